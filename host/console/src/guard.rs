//! Who may use the console: the login page (a token: the daemon's admin token or a named
//! one), the session it opens, and the middleware that every other console request
//! passes. A page needs the token's `read` scope, an action (any POST) `admin` and the
//! session's CSRF token — in the form's `csrf` field, or in the action's query for a
//! file upload — and, when the browser sends an `Origin`, this console's own. What the
//! request does runs as the token's principal (the audit trail names it).

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::CookieJar;
use maud::html;

use super::layout::{self, Ctx};
use super::session::{self, COOKIE};
use super::ConsoleState;
use passerelle_service::principal::{as_principal, Scope};
use passerelle_service::tokens::LoginRefused;

/// Form bodies of actions are small; uploads go through multipart with their own limit.
const FORM_LIMIT: usize = 64 * 1024;

/// `GET /console/login`.
pub async fn login_page(
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let from = connection.map(|c| c.0 .0.ip());
    // A browser elsewhere over plain HTTP would not keep the Secure cookie: say so
    // rather than let the login go round in circles.
    let plain_remote = secure_cookie(&headers, from) && !forwarded_https(&headers);
    login_form(
        StatusCode::OK,
        plain_remote.then_some(
            "this console's session cookie is sent over HTTPS only: open it through a TLS proxy (sending X-Forwarded-Proto: https), or from this machine",
        ),
    )
}

fn login_form(status: StatusCode, problem: Option<&str>) -> Response {
    let body = html! {
        main.login {
            h1 { "passerelle" }
            p { "Log in with an admin-API token: the daemon's admin token (" code { "admin-token" } " in its data directory) or a named token (" code { "passerelle tokens create" } ")." }
            @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
            form method="post" action="/console/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        }
    };
    layout::bare(status, "Log in", body)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /console/login`: opens a session for a valid token.
pub async fn log_in(
    State(state): State<ConsoleState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let from = connection.map(|c| c.0 .0.ip());
    if !same_origin(&headers) {
        return layout::refusal(
            StatusCode::FORBIDDEN,
            "this form did not come from this console",
        );
    }
    let token = form.token.trim().to_string();
    match state
        .daemon
        .app
        .console_login(&state.admin_token, &token, from)
        .await
    {
        Ok(Ok(principal)) => {
            tracing::info!(principal = %principal.name, "console: logged in");
            let id = state.sessions.open(token);
            let secure = secure_cookie(&headers, from);
            (
                jar.add(session::cookie(id, secure)),
                Redirect::to("/console"),
            )
                .into_response()
        }
        Ok(Err(LoginRefused::NoReadScope)) => login_form(
            StatusCode::FORBIDDEN,
            Some("this token holds no `read` scope: the console needs at least that"),
        ),
        Ok(Err(LoginRefused::Throttled(wait))) => {
            let mut response = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "too many wrong tokens from this address: try again in {} s",
                    wait.as_secs().max(1)
                )),
            );
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs().max(1)),
            );
            response
        }
        Ok(Err(LoginRefused::UnknownToken)) => {
            login_form(StatusCode::UNAUTHORIZED, Some("unknown token"))
        }
        Err(e) => layout::failure(None, e),
    }
}

/// `POST /console/logout`: any session may end itself (a `read` one too), with the
/// CSRF check of every action; recorded in the audit trail.
pub async fn log_out(
    State(state): State<ConsoleState>,
    jar: CookieJar,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    if let Some(c) = jar.get(COOKIE) {
        state.sessions.close(c.value());
    }
    let principal = passerelle_service::principal::current();
    if let Err(e) = state.daemon.app.console_logout(principal).await {
        tracing::warn!(principal = %ctx.name, error = %e, "console: logout not recorded");
    }
    (
        jar.remove(session::removal()),
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// Whether a browser's `Origin` (when it sends one) is this console's host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// Whether the session cookie is `Secure`: always, unless the browser is on this very
/// machine (loopback) and no TLS proxy in front says it came over HTTPS. A browser
/// elsewhere must come over HTTPS (a TLS proxy sending `X-Forwarded-Proto`): the
/// cookie is never sent in clear across a network.
pub(crate) fn secure_cookie(headers: &HeaderMap, from: Option<std::net::IpAddr>) -> bool {
    forwarded_https(headers) || !from.is_some_and(|ip| ip.is_loopback())
}

/// Whether a TLS proxy in front says the browser came over HTTPS.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `csrf` value in a query string or an urlencoded form.
fn csrf_field(encoded: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(encoded)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
}

/// The middleware in front of every console route; every answer, a refusal too,
/// carries the security headers.
pub async fn guard(
    State(state): State<ConsoleState>,
    jar: CookieJar,
    request: Request,
    next: Next,
) -> Response {
    with_headers(admit(state, jar, request, next).await)
}

/// Lets the request through as its session's principal, or refuses it.
async fn admit(state: ConsoleState, jar: CookieJar, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/console/login" || path == "/console/console.css" {
        return next.run(request).await;
    }
    let is_logout = path == "/console/logout";
    let is_get = matches!(*request.method(), Method::GET | Method::HEAD);
    let session_id = jar.get(COOKIE).map(|c| c.value().to_string());
    let session = session_id
        .as_deref()
        .and_then(|id| state.sessions.touch(id, is_get));
    let (Some(id), Some(session)) = (session_id, session) else {
        return if is_get {
            Redirect::to("/console/login").into_response()
        } else {
            layout::refusal(
                StatusCode::UNAUTHORIZED,
                "your session has ended: log in again",
            )
        };
    };
    let principal = match state
        .daemon
        .app
        .principal_for(&state.admin_token, &session.token)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            // The token was revoked: the session ends with it.
            state.sessions.close(&id);
            return Redirect::to("/console/login").into_response();
        }
        Err(e) => return layout::failure(None, e),
    };
    // Reading, and ending one's own session, need `read`; every other action `admin`.
    let needed = if is_get || is_logout {
        Scope::Read
    } else {
        Scope::Admin
    };
    if !principal.allows(needed) {
        return layout::refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "this needs the `{needed}` scope, which `{}` does not hold",
                principal.name
            ),
        );
    }
    let mut request = request;
    if !is_get {
        if !same_origin(request.headers()) {
            return layout::refusal(
                StatusCode::FORBIDDEN,
                "this form did not come from this console",
            );
        }
        let in_query = request.uri().query().and_then(|q| csrf_field(q.as_bytes()));
        let presented = match in_query {
            Some(v) => Some(v),
            None => {
                let is_form = request
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                if is_form {
                    let (parts, body) = request.into_parts();
                    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                        return layout::refusal(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "the form is too large",
                        );
                    };
                    let found = csrf_field(&bytes);
                    request = Request::from_parts(parts, Body::from(bytes));
                    found
                } else {
                    None
                }
            }
        };
        if !presented.is_some_and(|p| session.csrf_matches(&p)) {
            return layout::refusal(
                StatusCode::FORBIDDEN,
                "this form has expired or did not come from this console (CSRF check): reload the page and try again",
            );
        }
    }
    let ctx = Ctx {
        session: id,
        name: principal.name.clone(),
        admin: principal.allows(Scope::Admin),
        csrf: session.csrf.clone(),
        notice: session.notice.clone(),
    };
    request.extensions_mut().insert(ctx);
    as_principal(principal, next.run(request)).await
}

/// Every console answer: no caching, no framing, nothing loaded from elsewhere.
fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_field_is_read_from_a_form_or_a_query() {
        assert_eq!(csrf_field(b"a=1&csrf=x%2By").as_deref(), Some("x+y"));
        assert_eq!(csrf_field(b"a=1"), None);
    }

    #[test]
    fn an_origin_from_elsewhere_is_not_this_console() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7878"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7878"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_session_cookie_is_secure_unless_the_browser_is_on_this_machine_over_http() {
        let plain = HeaderMap::new();
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let local = Some("127.0.0.1".parse().unwrap());
        let local6 = Some("::1".parse().unwrap());
        let remote = Some("192.0.2.10".parse().unwrap());
        assert!(!secure_cookie(&plain, local));
        assert!(!secure_cookie(&plain, local6));
        assert!(secure_cookie(&proxied, local));
        assert!(secure_cookie(&plain, remote));
        assert!(secure_cookie(&proxied, remote));
        // An address not known: as if from elsewhere.
        assert!(secure_cookie(&plain, None));
    }
}
