//! Admin API: the change feed (`GET /v1/changes`) and webhook subscriptions (add, list,
//! show, remove, replay). Each handler translates one request into one call of the
//! service ([`passerelle_service::feed`], [`passerelle_service::subscriptions`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use passerelle_wire::Replay;

use super::{ApiError, ApiState, Body, ErrorBody, Params, PathParams};
use passerelle_service::feed::{ChangePage, ChangeQuery};
use passerelle_service::subscriptions::{AddSubscription, CreatedSubscription, SubscriptionView};

type Answer<T> = Result<Json<T>, ApiError>;

#[utoipa::path(
    get,
    path = "/v1/changes",
    operation_id = "listChanges",
    tag = "records",
    summary = "The change feed: appointment and slot changes after a sequence number, in commit order; patients as initials unless patients=true (needs patients:read)",
    params(ChangeQuery),
    responses(
        (status = 200, description = "A page of changes", body = ChangePage),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "`after` is past the feed's head (code ahead-of-feed)", body = ErrorBody),
        (status = 410, description = "Changes after `after` were removed by retention: read the current state, then follow from the head", body = ErrorBody)
    ),
)]
pub async fn changes(
    State(state): State<ApiState>,
    Params(query): Params<ChangeQuery>,
) -> Answer<ChangePage> {
    Ok(Json(state.daemon.app.changes(&query).await?))
}

#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    operation_id = "listSubscriptions",
    tag = "subscriptions",
    summary = "Webhook subscriptions and how far each got",
    responses(
        (status = 200, description = "Subscriptions", body = [SubscriptionView]),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn list(State(state): State<ApiState>) -> Answer<Vec<SubscriptionView>> {
    Ok(Json(state.daemon.app.subscriptions().await?))
}

#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    operation_id = "addSubscription",
    tag = "subscriptions",
    summary = "Add a webhook subscription; the answer holds its signing secret, shown only then",
    request_body = AddSubscription,
    responses(
        (status = 201, description = "Added", body = CreatedSubscription),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "A private destination not allowed (code private-destination), patients over http:// not allowed (cleartext-destination) or `after` past the feed's head (ahead-of-feed)", body = ErrorBody),
        (status = 410, description = "Retention removed changes after `after`", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn add(
    State(state): State<ApiState>,
    Body(body): Body<AddSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.daemon.app.add_subscription(&body).await?),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/subscriptions/{id}",
    operation_id = "showSubscription",
    tag = "subscriptions",
    summary = "One webhook subscription",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<SubscriptionView> {
    Ok(Json(state.daemon.app.subscription(&id).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/subscriptions/{id}",
    operation_id = "removeSubscription",
    tag = "subscriptions",
    summary = "Remove a webhook subscription",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn remove(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.remove_subscription(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/v1/subscriptions/{id}/replay",
    operation_id = "replaySubscription",
    tag = "subscriptions",
    summary = "Deliver again from a sequence number (a dead subscription comes back)",
    params(("id" = String, Path, description = "Subscription id")),
    request_body = Replay,
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks the scope", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "`after` is past the feed's head (code ahead-of-feed)", body = ErrorBody),
        (status = 410, description = "Retention removed changes after that number", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn replay(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<Replay>,
) -> Answer<SubscriptionView> {
    Ok(Json(
        state
            .daemon
            .app
            .replay_subscription(&id, body.after)
            .await?,
    ))
}
