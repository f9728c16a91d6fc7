//! The admin API (axum, JSON) that `passerelle serve` answers: the route table, bearer
//! authentication, JSON errors and input extractors. Handlers live in [`practices`]
//! (practices, accounts, secrets), [`records`] (appointments and slots read back),
//! [`runs`] ("Sync now", the sync log, metrics) and
//! [`connectors`] (versions, uploads, approval, rollback, drift pauses).
//!
//! Every endpoint but `/healthz` needs `Authorization: Bearer <token>`: the daemon's
//! admin token (compared in constant time, every scope) or a named token
//! ([`passerelle_service::tokens`]); a `GET` needs its `read` scope, any other method
//! `admin`, patient fields `patients:read`. Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status;
//! nothing a client sends can make a handler panic. The API is described by
//! `docs/openapi.json`, served at `/openapi.json`; a test checks the two agree.

pub mod connectors;
pub mod doc;
pub mod feed;
pub mod practices;
pub mod records;
pub mod runs;

pub use passerelle_wire::{ErrorBody, ErrorDetail};
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::json;

use passerelle_daemon::Daemon;
use passerelle_service::principal::{as_principal, Scope};
use passerelle_service::tokens::Authenticated;
use passerelle_service::ServiceError;

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub daemon: Arc<Daemon>,
    token: Arc<String>,
}

/// Every route: path, the methods it answers (as the OpenAPI document lists them) and
/// its handlers. The one place routes are declared.
pub fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<ApiState>,
)> {
    vec![
        ("/healthz", &["get"], get(healthz)),
        ("/metrics", &["get"], get(runs::metrics)),
        ("/openapi.json", &["get"], get(openapi)),
        (
            "/v1/practices",
            &["get", "post"],
            get(practices::list).post(practices::create),
        ),
        (
            "/v1/practices/{id}",
            &["get", "patch", "delete"],
            get(practices::show)
                .patch(practices::update)
                .delete(practices::delete),
        ),
        (
            "/v1/practices/{id}/accounts",
            &["get", "post"],
            get(practices::list_accounts).post(practices::create_account),
        ),
        ("/v1/practices/{id}/sync", &["post"], post(runs::sync_now)),
        (
            "/v1/practices/{id}/appointments",
            &["get"],
            get(records::appointments),
        ),
        ("/v1/slots", &["get"], get(records::slots)),
        ("/v1/accounts", &["get"], get(practices::all_accounts)),
        (
            "/v1/accounts/{id}",
            &["get", "patch", "delete"],
            get(practices::show_account)
                .patch(practices::update_account)
                .delete(practices::delete_account),
        ),
        (
            "/v1/accounts/{id}/secrets/{name}",
            &["put", "delete"],
            put(practices::set_secret).delete(practices::delete_secret),
        ),
        ("/v1/runs", &["get"], get(runs::list)),
        ("/v1/daemons", &["get"], get(runs::daemons)),
        ("/v1/runs/{id}", &["get"], get(runs::show)),
        ("/v1/runs/{id}/cassette", &["get"], get(runs::cassette)),
        (
            "/v1/connectors",
            &["get", "post"],
            get(connectors::list).post(connectors::upload_any),
        ),
        (
            "/v1/connectors/rejections",
            &["get"],
            get(connectors::rejections),
        ),
        (
            "/v1/connectors/{name}/versions",
            &["post"],
            post(connectors::upload),
        ),
        (
            "/v1/connectors/{name}/approve",
            &["post"],
            post(connectors::approve),
        ),
        (
            "/v1/connectors/{name}/shadow",
            &["post"],
            post(connectors::shadow),
        ),
        (
            "/v1/connectors/{name}/rollback",
            &["post"],
            post(connectors::rollback),
        ),
        (
            "/v1/connectors/{name}/canary",
            &["post", "delete"],
            post(connectors::start_canary).delete(connectors::stop_canary),
        ),
        (
            "/v1/connectors/{name}/promote",
            &["post"],
            post(connectors::promote),
        ),
        ("/v1/paused", &["get"], get(connectors::paused)),
        ("/v1/quarantine", &["get"], get(connectors::quarantine)),
        (
            "/v1/accounts/{id}/check",
            &["post"],
            post(practices::check_account),
        ),
        (
            "/v1/accounts/{id}/resume",
            &["post"],
            post(connectors::resume),
        ),
        ("/v1/changes", &["get"], get(feed::changes)),
        (
            "/v1/subscriptions",
            &["get", "post"],
            get(feed::list).post(feed::add),
        ),
        (
            "/v1/subscriptions/{id}",
            &["get", "delete"],
            get(feed::show).delete(feed::remove),
        ),
        (
            "/v1/subscriptions/{id}/replay",
            &["post"],
            post(feed::replay),
        ),
    ]
}

/// The API's router.
pub fn router(daemon: Arc<Daemon>, token: String) -> Router {
    let state = ApiState {
        daemon,
        token: Arc::new(token),
    };
    let mut router = Router::new();
    for (path, _, handlers) in routes() {
        router = router.route(path, handlers);
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        // JSON bodies: 1 MiB. Uploads read their body with their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

/// The client's address, when the listener gave it.
pub fn client_address(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// 429 for an address that presented too many wrong tokens.
fn throttled(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-wrong-tokens",
        format!("too many wrong tokens from this address: try again in {seconds} s"),
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits"),
    );
    response
}

/// The bearer token a request presents ("" if none).
fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

async fn authenticate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let presented = bearer(request.headers());
    let from = client_address(request.extensions());
    let principal = match state
        .daemon
        .app
        .authenticate(&state.token, presented, from, "api")
        .await
    {
        Ok(Authenticated::Principal(p)) => Some(p),
        Ok(Authenticated::Unknown) => None,
        Ok(Authenticated::Throttled(wait)) => return throttled(wait),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(principal) = principal else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <token>` (the daemon's admin token: daemon.token, or the admin-token file in its data directory)",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let needed = scope_for(request.method());
    if !principal.allows(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this request needs the `{needed}` scope, which `{}` does not hold",
                principal.name
            ),
        )
        .into_response();
    }
    // What the request does runs, and is recorded in the audit trail, as the token's.
    as_principal(principal, next.run(request)).await
}

/// Liveness.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` while serving, `stopping` during shutdown.
    pub status: String,
    /// This daemon's id (with a `read` token only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<String>,
    /// The live daemons on its database (ids and the runs each holds; empty if the
    /// database cannot be read). With a `read` token only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemons: Option<Vec<HealthDaemon>>,
}

/// A live daemon, as `/healthz` shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthDaemon {
    pub id: String,
    /// Runs it holds (leases).
    pub running: i64,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness: 200 while serving, 503 while stopping (no token needed; with a `read` token, also this daemon's id and the live daemons)",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "Stopping", body = Health),
    ),
)]
async fn healthz(State(state): State<ApiState>, request: Request) -> Response {
    let daemon = &state.daemon;
    let presented = bearer(request.headers());
    let from = client_address(request.extensions());
    // A wrong token here counts as anywhere else; liveness itself needs none.
    let reader = match daemon
        .app
        .authenticate(&state.token, presented, from, "api")
        .await
    {
        Ok(Authenticated::Principal(p)) => p.allows(Scope::Read),
        _ => false,
    };
    let daemons = if reader {
        Some(
            daemon
                .app
                .daemons()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|d| HealthDaemon {
                    id: d.id,
                    running: d.running,
                })
                .collect(),
        )
    } else {
        None
    };
    let stopping = daemon.is_stopping();
    let health = Health {
        status: if stopping { "stopping" } else { "ok" }.into(),
        daemon: reader.then(|| daemon.id.clone()),
        daemons,
    };
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(health)).into_response()
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
)]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc::document(),
    )
        .into_response()
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "no such endpoint (see /openapi.json)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not answer that method (see /openapi.json)",
    )
}

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }
}

/// The one mapping of the service's refusals to statuses. Unexpected failures (the
/// database) are logged and answered 500 without internals.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let message = e.to_string();
        match e {
            ServiceError::Invalid(_) => ApiError::bad_request(message),
            ServiceError::NotFound(_) => ApiError::not_found(message),
            ServiceError::Conflict { code, .. } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            ServiceError::TooSoon {
                retry_after_secs, ..
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-soon", message)
            },
            ServiceError::Rejected(r) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.kind, r.reason)
            }
            ServiceError::Gone(_) => ApiError::new(StatusCode::GONE, "gone", message),
            ServiceError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            ServiceError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", message)
            }
            ServiceError::Internal(e) => {
                tracing::error!("admin API: {e:#}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the daemon could not complete the request; see its log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON body; a malformed one is a 400/415 [`ApiError`] saying what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let invalid =
            |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", message);
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            // Every body is an object: a struct must not be read from an array.
            Ok(axum::Json(v)) if v.is_object() => serde_json::from_value(v)
                .map(Body)
                .map_err(|e| invalid(format!("invalid JSON body: {e}"))),
            Ok(_) => Err(invalid("the body must be a JSON object".into())),
            Err(rejection) => Err(ApiError::new(
                if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::BAD_REQUEST
                },
                "invalid-body",
                rejection.body_text(),
            )),
        }
    }
}

/// An optional JSON object body: empty means `T::default()`.
pub fn optional_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let invalid = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", message);
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Null) => Ok(T::default()),
        Ok(v) if v.is_object() => {
            serde_json::from_value(v).map_err(|e| invalid(format!("invalid JSON body: {e}")))
        }
        Ok(_) => Err(invalid("the body must be a JSON object".into())),
        Err(e) => Err(invalid(format!("invalid JSON body: {e}"))),
    }
}

/// Query parameters; unknown or malformed ones are a 400.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                rejection.body_text(),
            )),
        }
    }
}

/// Path parameters; a malformed one is a 400.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-path",
                rejection.body_text(),
            )),
        }
    }
}

/// The scope a request needs by its method: reading needs `read`, anything else
/// `admin`; what needs `patients:read` (patient fields) the service decides. The
/// OpenAPI document's 403 answers follow the same rule ([`doc`]).
pub(crate) fn scope_for(method: &axum::http::Method) -> Scope {
    match *method {
        axum::http::Method::GET | axum::http::Method::HEAD => Scope::Read,
        _ => Scope::Admin,
    }
}
