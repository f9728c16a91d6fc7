//! Admin API: connector versions (list, upload, approve, rollback, canaries, refused
//! candidates) and the drift loop's paused accounts (list, resume) and quarantined
//! items. Each handler translates one request into one call of the service
//! ([`passerelle_service::connectors`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use passerelle_wire::{ApproveRequest, CanaryRequest, VersionChoice};
use serde::Deserialize;

use super::{ApiError, ApiState, Body, ErrorBody, Params, PathParams};
use passerelle_model::connector::{Activation, Outcome};
use passerelle_model::connector::{Canary, Rejection};
use passerelle_model::pause::Pause;
use passerelle_model::quarantine::{QuarantineFilter, QuarantinedItem};
use passerelle_service::connectors::{ConnectorView, InstallAnswer};
use passerelle_service::flight::shadow::ShadowReport;
use passerelle_service::plugins::Candidate;
use passerelle_service::runs::Resumed;

type Answer<T> = Result<Json<T>, ApiError>;

#[utoipa::path(
    get,
    path = "/v1/connectors",
    operation_id = "listConnectors",
    tag = "connectors",
    summary = "Installed connector versions and which is active",
    responses(
        (status = 200, description = "Versions", body = [ConnectorView]),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn list(State(state): State<ApiState>) -> Answer<Vec<ConnectorView>> {
    Ok(Json(state.daemon.app.connector_views().await?))
}

/// `POST /v1/connectors/{name}/versions`: the body is the component's bytes, which must
/// describe itself as `name`. 201 when activated or waiting for approval, 200 when
/// already installed, 422 with the reason (its kind as the error code) when refused.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/versions",
    operation_id = "uploadConnectorVersion",
    tag = "connectors",
    summary = "Upload a new version of a named connector",
    params(("name" = String, Path, description = "Connector name")),
    request_body(content = passerelle_model::schema::ComponentBytes, content_type = "application/wasm", description = "The component's bytes"),
    responses(
        (status = 201, description = "Installed: activated or waiting for approval", body = InstallAnswer),
        (status = 200, description = "Already installed", body = InstallAnswer),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 413, description = "Larger than plugins.max_upload_bytes", body = ErrorBody),
        (status = 422, description = "The component was refused; the error code is the refusal kind", body = ErrorBody)
    ),
)]
pub async fn upload(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<InstallAnswer>), ApiError> {
    install_upload(state, Some(name), body).await
}

/// `POST /v1/connectors`: as [`upload`], for whichever connector the component is.
#[utoipa::path(
    post,
    path = "/v1/connectors",
    operation_id = "uploadConnector",
    tag = "connectors",
    summary = "Upload a connector component (any connector)",
    request_body(content = passerelle_model::schema::ComponentBytes, content_type = "application/wasm", description = "The component's bytes"),
    responses(
        (status = 201, description = "Installed: activated or waiting for approval", body = InstallAnswer),
        (status = 200, description = "Already installed", body = InstallAnswer),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 413, description = "Larger than plugins.max_upload_bytes", body = ErrorBody),
        (status = 422, description = "The component was refused; the error code is the refusal kind", body = ErrorBody)
    ),
)]
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

/// `POST /v1/connectors/{name}/approve {"version"}`.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/approve",
    operation_id = "approveConnectorVersion",
    tag = "connectors",
    summary = "Activate a version that waits for approval",
    params(("name" = String, Path, description = "Connector name")),
    request_body = ApproveRequest,
    responses(
        (status = 200, description = "Activated", body = Activation),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn approve(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<ApproveRequest>,
) -> Answer<Activation> {
    Ok(Json(state.daemon.app.approve(&name, &body.version).await?))
}

/// `POST /v1/connectors/{name}/shadow {"version"}`.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/shadow",
    operation_id = "shadowConnectorVersion",
    tag = "connectors",
    summary = "Replay a kept version on the flight recorder's cassettes of its connector (drifted and failed runs, baselines) and compare it with the active version: per cassette, drift fixed or not, records identical or different",
    params(("name" = String, Path, description = "Connector name")),
    request_body = ApproveRequest,
    responses(
        (status = 200, description = "The shadow report", body = ShadowReport),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn shadow(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Body(body): Body<ApproveRequest>,
) -> Answer<ShadowReport> {
    Ok(Json(state.daemon.app.shadow(&name, &body.version).await?))
}

/// `POST /v1/connectors/{name}/rollback {"version"?}`: that version, or the one active
/// before the current one.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/rollback",
    operation_id = "rollbackConnector",
    tag = "connectors",
    summary = "Activate an earlier kept version (the one named, or the one active before)",
    params(("name" = String, Path, description = "Connector name")),
    request_body = VersionChoice,
    responses(
        (status = 200, description = "Activated", body = Activation),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
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

/// `POST /v1/connectors/{name}/canary {"version", "practices"}`: runs that version for
/// those practices only.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/canary",
    operation_id = "startCanary",
    tag = "connectors",
    summary = "Run a kept version for some practices only (canary)",
    params(("name" = String, Path, description = "Connector name")),
    request_body = CanaryRequest,
    responses(
        (status = 200, description = "The canary", body = Canary),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
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
#[utoipa::path(
    delete,
    path = "/v1/connectors/{name}/canary",
    operation_id = "stopCanary",
    tag = "connectors",
    summary = "Stop the canary",
    params(("name" = String, Path, description = "Connector name")),
    responses(
        (status = 204, description = "Stopped"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody)
    ),
)]
pub async fn stop_canary(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.stop_canary(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connectors/{name}/promote`: the canary's version becomes active for all.
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/promote",
    operation_id = "promoteCanary",
    tag = "connectors",
    summary = "Make the canary's version active for all",
    params(("name" = String, Path, description = "Connector name")),
    responses(
        (status = 200, description = "Activated", body = Activation),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody)
    ),
)]
pub async fn promote(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
) -> Answer<Activation> {
    Ok(Json(state.daemon.app.promote(&name).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// 1 to 1000; default 50.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// `GET /v1/connectors/rejections`: refused candidates, newest first.
#[utoipa::path(
    get,
    path = "/v1/connectors/rejections",
    operation_id = "listRejections",
    tag = "connectors",
    summary = "Refused candidate components, newest first",
    params(Limit),
    responses(
        (status = 200, description = "Refusals", body = [Rejection]),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn rejections(
    State(state): State<ApiState>,
    Params(p): Params<Limit>,
) -> Answer<Vec<Rejection>> {
    Ok(Json(state.daemon.app.rejections(p.limit).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PausedFilter {
    /// Only this connector's paused accounts.
    connector: Option<String>,
}

/// `GET /v1/paused`: accounts paused by drift, with the drift report.
#[utoipa::path(
    get,
    path = "/v1/paused",
    operation_id = "listPaused",
    tag = "connectors",
    summary = "Accounts paused by schema drift, with the drift report",
    params(PausedFilter),
    responses(
        (status = 200, description = "Paused accounts", body = [Pause]),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn paused(
    State(state): State<ApiState>,
    Params(p): Params<PausedFilter>,
) -> Answer<Vec<Pause>> {
    Ok(Json(state.daemon.app.paused(p.connector.as_deref()).await?))
}

/// `POST /v1/accounts/{id}/resume`: lifts a drift pause and queues a `redrive` run.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/resume",
    operation_id = "resumeAccount",
    tag = "connectors",
    summary = "Lift an account's drift pause and re-drive it from its last checkpoint",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 202, description = "The re-drive run queued", body = Resumed),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 503, description = "The daemon is shutting down", body = ErrorBody)
    ),
)]
pub async fn resume(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<Resumed>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.daemon.resume(&id).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    connector: Option<String>,
    account: Option<String>,
    /// Include each item as received (it may hold patient data).
    #[serde(default)]
    with_items: bool,
    /// 1 to 10,000; default 100.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

/// `GET /v1/quarantine`: items set aside under the `quarantine` drift policy, newest
/// first; the items themselves only with `with_items=true`.
#[utoipa::path(
    get,
    path = "/v1/quarantine",
    operation_id = "listQuarantined",
    tag = "connectors",
    summary = "Items set aside under the quarantine drift policy, newest first",
    params(QuarantineQuery),
    responses(
        (status = 200, description = "Items", body = [QuarantinedItem]),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the patients:read scope (quarantined items may hold patient data)", body = ErrorBody)
    ),
)]
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
