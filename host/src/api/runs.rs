//! Admin API: "Sync now", the sync log, and the metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, Params, PathParams};
use crate::daemon::{Requested, SyncNowError};
use crate::store::runs::{Run, RunFilter, Status};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncNow {
    /// Only this account of the practice.
    account: Option<String>,
    /// Re-read the whole window and tombstone what the platform no longer returns.
    #[serde(default)]
    full: bool,
}

/// The answer to "Sync now": one run per account.
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncAccepted {
    pub runs: Vec<Requested>,
}

pub async fn sync_now(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: none means every account, incremental.
    let body: SyncNow = if body.iter().all(u8::is_ascii_whitespace) {
        SyncNow::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                format!("invalid JSON body: {e}"),
            )
        })?
    };
    match state
        .daemon
        .sync_now(&practice_id, body.account.as_deref(), body.full)
        .await
    {
        Ok(runs) => Ok((StatusCode::ACCEPTED, Json(SyncAccepted { runs })).into_response()),
        Err(e) => Err(match e {
            SyncNowError::NoPractice(_) | SyncNowError::NoAccount { .. } => {
                ApiError::not_found(e.to_string())
            }
            SyncNowError::NoAccounts(_) => ApiError::new(
                StatusCode::CONFLICT,
                "no-accounts",
                format!("{e}: add one first"),
            ),
            SyncNowError::TooSoon {
                retry_after_secs, ..
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-soon", e.to_string())
            },
            SyncNowError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                e.to_string(),
            ),
            SyncNowError::Other(e) => {
                let message = format!("{e:#}");
                if message.contains("no active version of connector") {
                    ApiError::new(StatusCode::CONFLICT, "connector-not-installed", message)
                } else {
                    e.into()
                }
            }
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    practice: Option<String>,
    account: Option<String>,
    status: Option<String>,
    /// RFC 3339.
    since: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<ApiState>,
    Params(q): Params<RunQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(Status::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "`since` must be an RFC 3339 instant such as 2026-03-29T03:00:00+02:00: {e}"
                    ))
                })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 10000"));
    }
    let runs = state
        .daemon
        .app
        .store
        .list_runs(&RunFilter {
            practice_id: q.practice,
            account_id: q.account,
            status,
            since,
            limit: Some(limit),
        })
        .await?;
    Ok(Json(runs))
}

pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Run>, ApiError> {
    state
        .daemon
        .app
        .store
        .run(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no run {id}")))
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
