//! Admin API: connector versions (list, upload, approve, rollback, refused candidates)
//! and the drift loop's paused accounts (list, resume) and quarantined items.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, Body, Params, PathParams};
use crate::plugins::{Activation, Candidate, Escalation, Installed, Outcome, Rejected};
use crate::queue::Submitted;
use crate::store::connectors::{Canary, ConnectorVersion, Rejection};
use crate::store::pauses::Pause;
use crate::store::quarantine::{QuarantineFilter, QuarantinedItem};

/// An installed connector version.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectorView {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub active: bool,
    pub installed_at: String,
    pub activated_at: Option<String>,
    /// Set while the version waits for approval: what it asks for beyond the version
    /// that was active when it arrived.
    pub pending_approval: Option<Escalation>,
    /// Set while the version runs as a canary: for these practices only.
    #[serde(default)]
    pub canary: Option<Vec<String>>,
}

impl ConnectorView {
    /// The views of `versions`, with the running canaries marked.
    pub fn list(versions: Vec<ConnectorVersion>, canaries: &[Canary]) -> Vec<ConnectorView> {
        versions
            .into_iter()
            .map(|v| {
                let canary = canaries
                    .iter()
                    .find(|c| c.name == v.name && c.version == v.version)
                    .map(|c| c.practices.clone());
                ConnectorView {
                    canary,
                    ..ConnectorView::from(v)
                }
            })
            .collect()
    }
}

impl From<ConnectorVersion> for ConnectorView {
    fn from(v: ConnectorVersion) -> Self {
        ConnectorView {
            pending_approval: v
                .pending_approval
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            name: v.name,
            version: v.version,
            sha256: v.sha256,
            active: v.active,
            installed_at: v.installed_at,
            activated_at: v.activated_at,
            canary: None,
        }
    }
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<ConnectorView>>, ApiError> {
    let store = &state.daemon.app.store;
    let versions = store.connector_versions(None).await?;
    Ok(Json(ConnectorView::list(
        versions,
        &store.canaries().await?,
    )))
}

/// What an upload did.
#[derive(Debug, Serialize, Deserialize)]
pub struct InstallAnswer {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub outcome: Outcome,
    /// The version active when the candidate arrived.
    pub previous: Option<String>,
    pub escalation: Option<Escalation>,
}

impl From<Installed> for InstallAnswer {
    fn from(i: Installed) -> Self {
        InstallAnswer {
            name: i.manifest.name,
            version: i.manifest.version,
            sha256: i.sha256,
            outcome: i.outcome,
            previous: i.previous,
            escalation: i.escalation,
        }
    }
}

/// `POST /v1/connectors/{name}/versions`: the body is the component's bytes, which must
/// describe itself as `name`. 201 when activated or waiting for approval, 200 when
/// already installed, 422 with the reason (its kind as the error code) when refused.
pub async fn upload(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    install_upload(state, Some(name), body).await
}

/// `POST /v1/connectors`: as [`upload`], for whichever connector the component is.
pub async fn upload_any(
    State(state): State<ApiState>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    install_upload(state, None, body).await
}

async fn install_upload(
    state: ApiState,
    name: Option<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
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
    match state.daemon.app.install(candidate).await {
        Ok(installed) => {
            let status = if installed.outcome == Outcome::AlreadyInstalled {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(InstallAnswer::from(installed))).into_response())
        }
        Err(e) => match e.downcast::<Rejected>() {
            Ok(r) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                r.kind,
                r.reason,
            )),
            Err(e) => Err(e.into()),
        },
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionChoice {
    version: Option<String>,
}

/// `POST /v1/connectors/{name}/approve {"version"}`.
pub async fn approve(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<VersionChoice>,
) -> Result<Json<Activation>, ApiError> {
    let Some(version) = body.version else {
        return Err(ApiError::bad_request(
            "name the version to approve: {\"version\": \"1.2.0\"}",
        ));
    };
    known_connector(&state, &name).await?;
    state
        .daemon
        .app
        .approve(&name, &version)
        .await
        .map(Json)
        .map_err(|e| ApiError::conflict(format!("{e:#}")))
}

/// `POST /v1/connectors/{name}/rollback {"version"?}`: that version, or the one active
/// before the current one.
pub async fn rollback(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<VersionChoice>,
) -> Result<Json<Activation>, ApiError> {
    known_connector(&state, &name).await?;
    state
        .daemon
        .app
        .rollback(&name, body.version.as_deref())
        .await
        .map(Json)
        .map_err(|e| ApiError::conflict(format!("{e:#}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    version: String,
    practices: Vec<String>,
}

/// `POST /v1/connectors/{name}/canary {"version", "practices"}`: runs that version for
/// those practices only.
pub async fn start_canary(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<CanaryRequest>,
) -> Result<Json<Canary>, ApiError> {
    known_connector(&state, &name).await?;
    state
        .daemon
        .app
        .start_canary(&name, &body.version, &body.practices)
        .await
        .map(Json)
        .map_err(|e| ApiError::conflict(format!("{e:#}")))
}

/// `DELETE /v1/connectors/{name}/canary`: its practices go back to the active version.
pub async fn stop_canary(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    known_connector(&state, &name).await?;
    state
        .daemon
        .app
        .stop_canary(&name)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| ApiError::conflict(format!("{e:#}")))
}

/// `POST /v1/connectors/{name}/promote`: the canary's version becomes active for all.
pub async fn promote(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Activation>, ApiError> {
    known_connector(&state, &name).await?;
    state
        .daemon
        .app
        .promote(&name)
        .await
        .map(Json)
        .map_err(|e| ApiError::conflict(format!("{e:#}")))
}

async fn known_connector(state: &ApiState, name: &str) -> Result<(), ApiError> {
    if state
        .daemon
        .app
        .store
        .connector_versions(Some(name))
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(format!(
            "connector `{name}` is not installed"
        )));
    }
    Ok(())
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
) -> Result<Json<Vec<Rejection>>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    Ok(Json(state.daemon.app.store.rejections(limit).await?))
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
) -> Result<Json<Vec<Pause>>, ApiError> {
    Ok(Json(
        state
            .daemon
            .app
            .store
            .pauses(p.connector.as_deref())
            .await?,
    ))
}

/// The answer to a resume: the `redrive` run queued.
#[derive(Debug, Serialize, Deserialize)]
pub struct Resumed {
    pub account_id: String,
    pub run_id: i64,
    pub coalesced: bool,
}

/// `POST /v1/accounts/{id}/resume`: lifts a drift pause and queues a `redrive` run.
pub async fn resume(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<Resumed>), ApiError> {
    let Some(account) = state.daemon.app.store.account(&id).await? else {
        return Err(ApiError::not_found(format!("no account `{id}`")));
    };
    if state.daemon.is_stopping() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the daemon is shutting down",
        ));
    }
    match state.daemon.resume(&account).await? {
        None => Err(ApiError::conflict(format!("account `{id}` is not paused"))),
        Some(s) => {
            let (run_id, coalesced) = match s {
                Submitted::Queued(r) => (r, false),
                Submitted::Coalesced(r) => (r, true),
            };
            Ok((
                StatusCode::ACCEPTED,
                Json(Resumed {
                    account_id: id,
                    run_id,
                    coalesced,
                }),
            ))
        }
    }
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
) -> Result<Json<Vec<QuarantinedItem>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    Ok(Json(
        state
            .daemon
            .app
            .store
            .quarantined(&QuarantineFilter {
                connector: q.connector,
                account_id: q.account,
                with_items: q.with_items,
                limit: Some(limit),
            })
            .await?,
    ))
}
