//! Admin API: "Sync now", the sync log, and the metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{optional_body, ApiError, ApiState, Params, PathParams};
use crate::model::run::Run;
use crate::service::runs::{RunQuery, SyncAccepted, SyncRequest};

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

pub async fn list(
    State(state): State<ApiState>,
    Params(query): Params<RunQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    Ok(Json(state.daemon.app.runs(&query).await?))
}

pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(state.daemon.app.run(id).await?))
}

pub async fn metrics(State(state): State<ApiState>) -> Response {
    let daemon = &state.daemon;
    let metrics = &daemon.app.metrics;
    metrics.queue_depth.set(daemon.queue.depth() as i64);
    metrics.runs_in_flight.set(daemon.queue.running() as i64);
    daemon.refresh_pause_gauge().await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}
