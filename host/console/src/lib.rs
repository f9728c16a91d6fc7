//! The operator console: server-rendered HTML pages (maud) under `/console` on the
//! admin API's listener, with no JavaScript and no asset fetched from elsewhere
//! (charts are SVG drawn on the server, the stylesheet is compiled in).
//!
//! It is a front end like the CLI and the API: every page reads the service layer
//! ([`passerelle_service`]) and every action calls the method the API calls (the daemon's
//! "Sync now" with its coalescing and 429, resume, approve, rollback, canary, promote,
//! install), translating refusals with the API's one mapping ([`passerelle_api::ApiError`]).
//!
//! - [`session`]: login sessions (cookie, CSRF token, one-shot notices);
//! - [`guard`]: who may see what: the session's token and scopes, CSRF on every POST;
//! - [`layout`]: the page shell, navigation, notices, error pages, formatting;
//! - [`chart`]: the SVG charts;
//! - [`overview`], [`practices`], [`runs`], [`connectors`]: the pages and their actions.

pub mod chart;
pub mod connectors;
pub mod export;
pub mod guard;
pub mod layout;
pub mod overview;
pub mod practices;
pub mod runs;
pub mod session;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use passerelle_daemon::Daemon;

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    pub daemon: Arc<Daemon>,
    admin_token: Arc<String>,
    pub sessions: Arc<session::Sessions>,
}

/// The console's routes, under `/console`.
pub fn router(daemon: Arc<Daemon>, admin_token: String) -> Router {
    let state = ConsoleState {
        daemon,
        admin_token: Arc::new(admin_token),
        sessions: Arc::new(session::Sessions::default()),
    };
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route("/console/login", get(guard::login_page).post(guard::log_in))
        .route("/console/logout", post(guard::log_out))
        .route("/console/console.css", get(layout::stylesheet))
        .route("/console/practices", get(practices::list))
        .route("/console/practices/{id}", get(practices::show))
        .route("/console/practices/{id}/sync", post(practices::sync_now))
        .route("/console/accounts/{id}", get(practices::account))
        .route("/console/accounts/{id}/resume", post(practices::resume))
        .route("/console/export", get(export::page))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{id}", get(runs::show))
        .route("/console/runs/{id}/cassette", get(runs::cassette))
        .route("/console/connectors", get(connectors::list))
        .route(
            "/console/connectors/upload",
            // The handler reads up to `plugins.max_upload_bytes` itself.
            post(connectors::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/console/connectors/{name}", get(connectors::show))
        .route("/console/connectors/{name}/{action}", post(connectors::act))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        // An operator who types the daemon's address lands on the console (which asks
        // for a login itself); no token needed to be told where it is.
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/console") }),
        )
        .with_state(state)
}
