//! Admin API: connector versions (list, upload, approve, rollback, canaries, refused
//! candidates) and the drift loop's paused accounts (list, resume) and quarantined
//! items. Each handler translates one request into one call of the service
//! ([`crate::service::connectors`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Params, PathParams};
use crate::model::connector::{Activation, Outcome};
use crate::plugins::Candidate;
use crate::service::connectors::{ConnectorView, InstallAnswer};
use crate::service::runs::Resumed;
use crate::store::connectors::{Canary, Rejection};
use crate::store::pauses::Pause;
use crate::store::quarantine::{QuarantineFilter, QuarantinedItem};

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn list(State(state): State<ApiState>) -> Answer<Vec<ConnectorView>> {
    Ok(Json(state.daemon.app.connector_views().await?))
}

/// `POST /v1/connectors/{name}/versions`: the body is the component's bytes, which must
/// describe itself as `name`. 201 when activated or waiting for approval, 200 when
/// already installed, 422 with the reason (its kind as the error code) when refused.
pub async fn upload(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<InstallAnswer>), ApiError> {
    install_upload(state, Some(name), body).await
}

/// `POST /v1/connectors`: as [`upload`], for whichever connector the component is.
pub async fn upload_any(
    State(state): State<ApiState>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<InstallAnswer>), ApiError> {
    install_upload(state, None, body).await
}

async fn install_upload(
    state: ApiState,
    name: Option<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<InstallAnswer>), ApiError> {
    let limit = state.daemon.app.config.plugins.max_upload_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("a component may be at most {limit} bytes (plugins.max_upload_bytes)"),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be the component's bytes (Content-Type: application/wasm)",
        ));
    }
    let candidate = Candidate {
        bytes: bytes.to_vec(),
        source: "api".into(),
        expected_name: name,
    };
    let installed = state.daemon.app.install(candidate).await?;
    let status = if installed.outcome == Outcome::AlreadyInstalled {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(InstallAnswer::from(installed))))
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionChoice {
    pub version: Option<String>,
}

/// `POST /v1/connectors/{name}/approve {"version"}`.
pub async fn approve(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<VersionChoice>,
) -> Answer<Activation> {
    let Some(version) = body.version else {
        return Err(ApiError::bad_request(
            "name the version to approve: {\"version\": \"1.2.0\"}",
        ));
    };
    Ok(Json(state.daemon.app.approve(&name, &version).await?))
}

/// `POST /v1/connectors/{name}/rollback {"version"?}`: that version, or the one active
/// before the current one.
pub async fn rollback(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<VersionChoice>,
) -> Answer<Activation> {
    Ok(Json(
        state
            .daemon
            .app
            .rollback(&name, body.version.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    pub version: String,
    pub practices: Vec<String>,
}

/// `POST /v1/connectors/{name}/canary {"version", "practices"}`: runs that version for
/// those practices only.
pub async fn start_canary(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<CanaryRequest>,
) -> Answer<Canary> {
    Ok(Json(
        state
            .daemon
            .app
            .start_canary(&name, &body.version, &body.practices)
            .await?,
    ))
}

/// `DELETE /v1/connectors/{name}/canary`: its practices go back to the active version.
pub async fn stop_canary(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.stop_canary(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connectors/{name}/promote`: the canary's version becomes active for all.
pub async fn promote(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Answer<Activation> {
    Ok(Json(state.daemon.app.promote(&name).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    limit: Option<i64>,
}

/// `GET /v1/connectors/rejections`: refused candidates, newest first.
pub async fn rejections(
    State(state): State<ApiState>,
    Params(p): Params<Limit>,
) -> Answer<Vec<Rejection>> {
    Ok(Json(state.daemon.app.rejections(p.limit).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PausedFilter {
    connector: Option<String>,
}

/// `GET /v1/paused`: accounts paused by drift, with the drift report.
pub async fn paused(
    State(state): State<ApiState>,
    Params(p): Params<PausedFilter>,
) -> Answer<Vec<Pause>> {
    Ok(Json(state.daemon.app.paused(p.connector.as_deref()).await?))
}

/// `POST /v1/accounts/{id}/resume`: lifts a drift pause and queues a `redrive` run.
pub async fn resume(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<Resumed>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.daemon.resume(&id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineQuery {
    connector: Option<String>,
    account: Option<String>,
    /// Include each item as received (it may hold patient data).
    #[serde(default)]
    with_items: bool,
    limit: Option<i64>,
}

/// `GET /v1/quarantine`: items set aside under the `quarantine` drift policy, newest
/// first; the items themselves only with `with_items=true`.
pub async fn quarantine(
    State(state): State<ApiState>,
    Params(q): Params<QuarantineQuery>,
) -> Answer<Vec<QuarantinedItem>> {
    Ok(Json(
        state
            .daemon
            .app
            .quarantined(QuarantineFilter {
                connector: q.connector,
                account_id: q.account,
                with_items: q.with_items,
                limit: q.limit,
            })
            .await?,
    ))
}
