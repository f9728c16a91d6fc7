//! The console's page shell: the navigation, who is logged in (with the logout form),
//! the one-shot notice, error pages (a refusal from the service gets the status and
//! message the API gives it), the stylesheet, and small formatting helpers shared by
//! the pages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use passerelle_api::ApiError;
use passerelle_model::run::Status;
use passerelle_service::ServiceError;

/// The request's session as pages see it (set by [`super::guard`]).
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session id (to leave a notice for the next page).
    pub session: String,
    /// The principal's name (`token:admin`, `token:<name>`).
    pub name: String,
    /// Whether actions are allowed (the `admin` scope).
    pub admin: bool,
    pub csrf: String,
    pub notice: Option<String>,
}

const STYLESHEET: &str = include_str!("console.css");

/// `GET /console/console.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · passerelle" }
            link rel="stylesheet" href="/console/console.css";
        }
    }
}

/// A page without navigation (login, refusals before a session exists).
pub fn bare(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" { (head(title)) body { (body) } }
    };
    html_response(status, page)
}

fn html_response(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// A console page: navigation, the notice left by the last action, `body`.
pub fn page(ctx: &Ctx, title: &str, body: Markup) -> Response {
    page_with_status(ctx, StatusCode::OK, title, body)
}

fn page_with_status(ctx: &Ctx, status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/console" { "passerelle" }
                    nav {
                        a href="/console" { "Overview" }
                        a href="/console/practices" { "Practices" }
                        a href="/console/runs" { "Runs" }
                        a href="/console/connectors" { "Connectors" }
                        a href="/console/export" { "Open data" }
                    }
                    form.who method="post" action="/console/logout" {
                        span { (ctx.name) @if !ctx.admin { " (read only)" } }
                        (csrf(ctx))
                        button.link type="submit" { "Log out" }
                    }
                }
                main {
                    @if let Some(notice) = &ctx.notice { p.notice role="status" { (notice) } }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(status, page)
}

/// The hidden CSRF field every action form carries.
pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A refusal page with no session behind it (or before one is checked).
pub fn refusal(status: StatusCode, message: &str) -> Response {
    bare(
        status,
        "Refused",
        html! {
            main.login {
                h1 { "Refused" }
                p.problem role="alert" { (message) }
                p { a href="/console" { "Back to the console" } }
            }
        },
    )
}

/// What a handler returns when the service refuses: the API's status and message as a
/// page (with `Retry-After` when the API would send it).
pub fn failure(ctx: Option<&Ctx>, e: ServiceError) -> Response {
    let e = ApiError::from(e);
    let body = html! {
        p.problem role="alert" { (e.message) }
        @if let Some(secs) = e.retry_after { p { "Try again in " (secs) " s." } }
        p { a href="/console" { "Back to the overview" } }
    };
    let mut response = match ctx {
        Some(ctx) => page_with_status(ctx, e.status, refusal_title(e.status), body),
        None => bare(e.status, refusal_title(e.status), body),
    };
    if let Some(secs) = e.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

fn refusal_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too soon",
        StatusCode::CONFLICT => "Not possible now",
        s if s.is_server_error() => "Something went wrong",
        _ => "Refused",
    }
}

/// Leaves `notice` for the next page and sends the browser there (after an action).
pub fn done(state: &super::ConsoleState, ctx: &Ctx, notice: String, to: &str) -> Response {
    state.sessions.notify(&ctx.session, notice);
    axum::response::Redirect::to(to).into_response()
}

/// `2026-11-30T06:52:25.123Z` as `2026-11-30 06:52:25 UTC`.
pub fn when(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => text.to_string(),
    }
}

/// Milliseconds for people: `850 ms`, `12.4 s`, `3 min 5 s`.
pub fn duration(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A run's status as a coloured badge.
pub fn badge(status: Status) -> Markup {
    html! { span class={ "badge " (status.as_str()) } { (status.as_str()) } }
}

/// A link to the next page of a list, keeping its other parameters.
pub fn next_link(base: &str, params: &[(&str, Option<String>)], cursor: (&str, String)) -> Markup {
    let mut pairs: Vec<(&str, String)> = params
        .iter()
        .filter_map(|(k, v)| v.clone().filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    pairs.push((cursor.0, cursor.1));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    html! { p.pager { a rel="next" href={ (base) "?" (query) } { "Next page →" } } }
}

/// Escaped text that may be long, shown whole but wrapped.
pub fn detail(text: &str) -> Markup {
    html! { pre.detail { (text) } }
}

/// An empty state.
pub fn none(text: &str) -> Markup {
    html! { p.empty { (PreEscaped("&mdash; ")) (text) } }
}
