//! Typed HTTP through the host's `http` import.
//!
//! [`Request`] builds a request (secrets by reference only), [`Request::send`] maps
//! transport failures and HTTP statuses onto [`SyncError`] the way the host expects
//! (401/403 → `unauthorized`, 429 → `rate-limited` with Retry-After, 5xx and timeouts →
//! `unavailable`; a 429 with a short Retry-After is first retried, see
//! [`RETRY_WITHIN_RUN_SECS`]), and [`Request::json`] parses the body into `T` or a precise
//! `schema-drift` (see [`crate::drift`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::passerelle::connector::http as host;
use crate::{Header, HeaderValue, HttpError, Method, SecretRef, SyncError};

pub use crate::bindings::passerelle::connector::types::Response;

/// A 429 whose Retry-After is at most this many seconds is retried within the run
/// (the host makes every request to the platform wait that long); a longer one ends the
/// run `rate-limited` so the scheduler retries later.
pub const RETRY_WITHIN_RUN_SECS: u32 = 30;
/// How many 429s one request retries before giving up.
pub const RATE_LIMIT_RETRIES: u32 = 3;

/// An outbound request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
    endpoint: Option<String>,
    /// Headers with a secret inside a template (contract 0.1.2).
    #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
    templated: Vec<crate::SecretTemplate>,
}

/// `GET url`.
pub fn get(url: impl Into<String>) -> Request {
    Request::new(Method::Get, url)
}

/// `POST url`.
pub fn post(url: impl Into<String>) -> Request {
    Request::new(Method::Post, url)
}

/// Percent-encodes a query-string component.
pub fn encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for b in component.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: vec![Header {
                name: "accept".into(),
                value: HeaderValue::Text("application/json".into()),
            }],
            body: None,
            timeout_ms: None,
            endpoint: None,
            #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
            templated: Vec::new(),
        }
    }

    /// Appends `key=value` to the query string (both percent-encoded).
    pub fn query(mut self, key: &str, value: &str) -> Self {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        self.url = format!("{}{sep}{}={}", self.url, encode(key), encode(value));
        self
    }

    /// A literal header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: HeaderValue::Text(value.into()),
        });
        self
    }

    /// A header whose value is the account's secret `secret` (the host fills it in).
    pub fn secret_header(mut self, name: &str, secret: &str) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: HeaderValue::Secret(secret.into()),
        });
        self
    }

    /// `Authorization: Bearer <secret>`.
    pub fn bearer(self, secret: &str) -> Self {
        self.secret_prefix("authorization", "Bearer ", secret)
    }

    /// A header whose value is literal `prefix` then the account's secret `secret`
    /// (`secret_prefix("authorization", "Partner ", "partner-key")`).
    pub fn secret_prefix(mut self, name: &str, prefix: &str, secret: &str) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: HeaderValue::SecretWithPrefix(SecretRef {
                prefix: prefix.into(),
                name: secret.into(),
            }),
        });
        self
    }

    /// A header whose value is the account's secret `secret` inside literal text:
    /// `secret_template("authorization", "Platform apikey=\"", "api-key", "\"")` sends
    /// `Authorization: Platform apikey="<the key>"`. Needs a 0.1.2 host (contract 0.1.2).
    #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
    pub fn secret_template(
        mut self,
        header: &str,
        before: &str,
        secret: &str,
        after: &str,
    ) -> Self {
        self.templated.push(crate::SecretTemplate {
            header: header.into(),
            before: before.into(),
            secret: secret.into(),
            after: after.into(),
        });
        self
    }

    /// A JSON body (and its content type).
    pub fn json_body<B: Serialize>(mut self, body: &B) -> Result<Self, SyncError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| SyncError::Internal(format!("cannot encode request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self.header("content-type", "application/json"))
    }

    /// Per-request timeout (the host caps it).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The endpoint's name in drift reports and errors, e.g. `GET /booking/{centre}.json`.
    /// Defaults to the method and the URL's path.
    pub fn endpoint(mut self, name: &str) -> Self {
        self.endpoint = Some(name.into());
        self
    }

    /// The URL with its query string, as it will be sent.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers so far (secrets by reference: the host fills them in).
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The headers with a secret inside a template (contract 0.1.2).
    #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
    pub fn templated(&self) -> &[crate::SecretTemplate] {
        &self.templated
    }

    /// The endpoint's name: [`Self::endpoint`]'s, else the method and the URL's path.
    pub fn endpoint_name(&self) -> String {
        if let Some(e) = &self.endpoint {
            return e.clone();
        }
        let after_scheme = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        let path = after_scheme
            .find('/')
            .map_or("/", |i| &after_scheme[i..])
            .split(['?', '#'])
            .next()
            .unwrap_or("/");
        format!("{} {path}", method_name(self.method))
    }

    /// Sends the request; any status but 2xx becomes the matching [`SyncError`].
    pub fn send(self) -> Result<Response, SyncError> {
        let endpoint = self.endpoint_name();
        #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
        let templated = self.templated;
        let request = crate::bindings::passerelle::connector::types::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        };
        let mut retries = 0;
        loop {
            #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
            let sent = if templated.is_empty() {
                host::send(&request)
            } else {
                host::send_templated(&request, &templated)
            };
            #[cfg(any(feature = "contract-0-1-0", feature = "contract-0-1-1"))]
            let sent = host::send(&request);
            let response = sent.map_err(|e| transport_error(&endpoint, e))?;
            if response.status == 429 && retries < RATE_LIMIT_RETRIES {
                let after =
                    header(&response, "retry-after").and_then(|v| v.trim().parse::<u32>().ok());
                if after.is_none_or(|s| s <= RETRY_WITHIN_RUN_SECS) {
                    // The host holds this platform's next request until the delay passed.
                    retries += 1;
                    crate::log::write(
                        crate::Level::Info,
                        "rate-limited by the platform; retrying after its delay",
                        &[
                            ("endpoint", &endpoint),
                            (
                                "retry_after_s",
                                &after.map_or("1".into(), |s| s.to_string()),
                            ),
                        ],
                    );
                    continue;
                }
            }
            return status_error(&endpoint, &response).map_or(Ok(response), Err);
        }
    }

    /// Sends the request and parses a 2xx JSON body into `T`.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, SyncError> {
        let endpoint = self.endpoint_name();
        let response = self.send()?;
        crate::drift::parse(&endpoint, &response.body)
    }
}

/// Sends `GET url` and parses the JSON answer into `T`.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, SyncError> {
    get(url).json()
}

/// Sends `POST url` with a JSON body and parses the JSON answer into `T`.
pub fn post_json<T: DeserializeOwned, B: Serialize>(url: &str, body: &B) -> Result<T, SyncError> {
    post(url).json_body(body)?.json()
}

/// A response header's value (names are lower-case).
pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

fn transport_error(endpoint: &str, e: HttpError) -> SyncError {
    match e {
        HttpError::Denied(why) => SyncError::InvalidConfig(format!("{endpoint}: denied: {why}")),
        HttpError::InvalidRequest(why) => {
            SyncError::Internal(format!("{endpoint}: invalid request: {why}"))
        }
        HttpError::Timeout => SyncError::Unavailable(format!("{endpoint}: timed out")),
        HttpError::TooLarge(cap) => {
            SyncError::Unavailable(format!("{endpoint}: response larger than {cap} bytes"))
        }
        HttpError::Connection(why) => SyncError::Unavailable(format!("{endpoint}: {why}")),
    }
}

/// The error a non-2xx status stands for, if any.
pub fn status_error(endpoint: &str, response: &Response) -> Option<SyncError> {
    let status = response.status;
    Some(match status {
        200..=299 => return None,
        401 | 403 => SyncError::Unauthorized(format!("{endpoint}: HTTP {status}")),
        429 => SyncError::RateLimited(
            header(response, "retry-after").and_then(|v| v.trim().parse::<u32>().ok()),
        ),
        404 => SyncError::InvalidConfig(format!("{endpoint}: HTTP 404 (check the settings)")),
        500..=599 => SyncError::Unavailable(format!("{endpoint}: HTTP {status}")),
        _ => SyncError::Internal(format!("{endpoint}: unexpected HTTP {status}")),
    })
}
