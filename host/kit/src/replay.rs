//! The replay server: a local HTTP server answering a connector's requests from a
//! cassette. The host's HTTP capability sends every request of a replayed run here
//! (`HttpPolicy::replay_to`, origin kept in the path), so the run goes through the real
//! sandbox and the real HTTP path, and never reaches the network.
//!
//! The server keeps every request it saw (for the report and the contract checks) and
//! can serve one exchange with another body (the drift probes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::cassette::{Cassette, Request};

/// Marks the answer to a request no exchange matches.
pub const UNMATCHED_HEADER: &str = "x-passerelle-cassette";

/// One request the server saw and the exchange that answered it (None: unmatched).
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: Request,
    pub exchange: Option<usize>,
}

struct Shared {
    cassette: Cassette,
    seen: Mutex<Vec<Seen>>,
    /// Exchange index → body served instead of the recorded one.
    substitute: Mutex<Option<(usize, Vec<u8>)>>,
}

/// A running replay server; stops when dropped.
pub struct ReplayServer {
    shared: Arc<Shared>,
    base: Url,
    task: tokio::task::JoinHandle<()>,
}

impl ReplayServer {
    /// Serves `cassette` on a free loopback port.
    pub async fn start(cassette: Cassette) -> std::io::Result<ReplayServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cassette,
            seen: Mutex::new(Vec::new()),
            substitute: Mutex::new(None),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ReplayServer {
            shared,
            base: Url::parse(&format!("http://{addr}/replay")).expect("a valid URL"),
            task,
        })
    }

    /// The base URL the HTTP capability sends every request to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn cassette(&self) -> &Cassette {
        &self.shared.cassette
    }

    /// Every request seen since the last call, in order.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().expect("not poisoned"))
    }

    /// Serves `body` for exchange `index` until [`Self::restore`].
    pub fn substitute(&self, index: usize, body: Vec<u8>) {
        *self.shared.substitute.lock().expect("not poisoned") = Some((index, body));
    }

    pub fn restore(&self) {
        *self.shared.substitute.lock().expect("not poisoned") = None;
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(request) = request_of(&method, &uri, &headers, &body) else {
        return (StatusCode::BAD_REQUEST, "not a replayed request").into_response();
    };
    let found = shared.cassette.find(&request);
    shared.seen.lock().expect("not poisoned").push(Seen {
        request: request.clone(),
        exchange: found,
    });
    let Some(index) = found else {
        return (
            StatusCode::NOT_FOUND,
            [(UNMATCHED_HEADER, "unmatched")],
            format!("no exchange of the cassette matches {}", request.line()),
        )
            .into_response();
    };
    let exchange = &shared.cassette.exchanges[index];
    let body = match &*shared.substitute.lock().expect("not poisoned") {
        Some((i, body)) if *i == index => body.clone(),
        _ => exchange.body.clone(),
    };
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &exchange.headers_out {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

/// `/replay/{scheme}/{host}/{port}{path}?{query}` back to the request the connector made.
fn request_of(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<Request> {
    let rest = uri.path().strip_prefix("/replay/")?;
    let mut parts = rest.splitn(4, '/');
    let (scheme, host, port) = (parts.next()?, parts.next()?, parts.next()?);
    let path = format!("/{}", parts.next().unwrap_or(""));
    let query = match uri.query() {
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect(),
        None => Vec::new(),
    };
    Some(Request {
        method: method.as_str().to_string(),
        origin: format!("{scheme}://{host}:{port}"),
        path,
        query,
        headers: headers
            .iter()
            .filter(|(k, _)| k.as_str() != "host")
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    })
}
