//! Admin API: "Sync now", the sync log, and the metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use passerelle_model::daemon::DaemonRow;

use super::{optional_body, ApiError, ApiState, ErrorBody, Params, PathParams};
use passerelle_model::run::Run;
use passerelle_service::flight::RunCassette;
use passerelle_service::runs::{RunQuery, SyncAccepted, SyncRequest};

#[utoipa::path(
    post,
    path = "/v1/practices/{id}/sync",
    operation_id = "syncNow",
    tag = "runs",
    summary = "Sync now: queue a manual run for every account of the practice (or one). An account with a run queued or running gets that run back (coalesced: true).",
    params(("id" = String, Path, description = "Practice id")),
    request_body = Option<SyncRequest>,
    responses(
        (status = 202, description = "Runs queued or coalesced", body = SyncAccepted),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 429, description = "A manual run was requested too soon", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The daemon is shutting down", body = ErrorBody)
    ),
)]
pub async fn sync_now(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    // The body is optional: none means every account, incremental.
    let request: SyncRequest = optional_body(&body)?;
    let runs = state.daemon.sync_now(&practice_id, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(SyncAccepted { runs })))
}

#[utoipa::path(
    get,
    path = "/v1/runs",
    operation_id = "listRuns",
    tag = "runs",
    summary = "The sync log, newest first",
    params(RunQuery),
    responses(
        (status = 200, description = "Runs", body = [Run]),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn list(
    State(state): State<ApiState>,
    Params(query): Params<RunQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    Ok(Json(state.daemon.app.runs(&query).await?))
}

#[utoipa::path(
    get,
    path = "/v1/daemons",
    operation_id = "listDaemons",
    tag = "operations",
    summary = "The live daemons on this database, with the runs each holds",
    responses(
        (status = 200, description = "Daemons", body = [DaemonRow]),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn daemons(State(state): State<ApiState>) -> Result<Json<Vec<DaemonRow>>, ApiError> {
    Ok(Json(state.daemon.app.daemons().await?))
}

#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    operation_id = "showRun",
    tag = "runs",
    summary = "Show a run",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 400, description = "Invalid path parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(state.daemon.app.run(id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/runs/{id}/cassette",
    operation_id = "runCassette",
    tag = "runs",
    summary = "The flight recorder's cassette of a run that drifted or failed: its HTTP exchanges, redacted (no secret, no patient value), for `connector test`. Needs patients:read; every read is audited.",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "The cassette", body = RunCassette),
        (status = 400, description = "Invalid path parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the patients:read scope", body = ErrorBody),
        (status = 404, description = "No such run, or it kept no cassette", body = ErrorBody)
    ),
)]
pub async fn cassette(
    State(state): State<ApiState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<RunCassette>, ApiError> {
    Ok(Json(state.daemon.app.run_cassette(id).await?))
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Metrics: OpenMetrics when the Accept header asks for it (as Prometheus does), else Prometheus' text format 0.0.4",
    responses(
        (status = 200, description = "Metrics", content(
            (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (String = "text/plain; version=0.0.4; charset=utf-8"),
        )),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn metrics(State(state): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    let daemon = &state.daemon;
    let metrics = &daemon.app.metrics;
    if let Ok(depth) = daemon.app.store.queue_depth().await {
        metrics.queue_depth.set(depth);
    }
    metrics.runs_in_flight.set(daemon.queue.running() as i64);
    metrics
        .runs_memory_bytes
        .set(daemon.app.runtime.memory_budget().used() as i64);
    daemon.refresh_pause_gauge().await;
    use passerelle_runtime::metrics::{OPENMETRICS, PROMETHEUS_TEXT};
    // Prometheus asks for OpenMetrics first; most other clients (prometheus_client's
    // text parser, curl) send no such Accept and get the text format they read.
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (OPENMETRICS, metrics.render())
    } else {
        (PROMETHEUS_TEXT, metrics.render_prometheus_text())
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
