//! Admin API: practices, their accounts, and the accounts' secrets (write-only: a
//! secret's value is never returned, only its name). Each handler translates one request
//! into one call of the service ([`crate::service::practices`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Params, PathParams};
use crate::service::practices::{
    AccountCreated, AccountUpdate, NewAccount, NewPractice, PracticeUpdate, PracticeView,
};
use crate::store::practices::Account;

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn list(State(state): State<ApiState>) -> Answer<Vec<PracticeView>> {
    Ok(Json(state.daemon.app.practices(state.daemon.now()).await?))
}

pub async fn create(
    State(state): State<ApiState>,
    Body(body): Body<NewPractice>,
) -> Result<(StatusCode, Json<PracticeView>), ApiError> {
    let view = state
        .daemon
        .app
        .create_practice(body, state.daemon.now())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<PracticeView> {
    Ok(Json(
        state
            .daemon
            .app
            .show_practice(&id, state.daemon.now())
            .await?,
    ))
}

pub async fn update(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<PracticeUpdate>,
) -> Answer<PracticeView> {
    Ok(Json(
        state
            .daemon
            .app
            .update_practice(&id, body, state.daemon.now())
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    #[serde(default)]
    with_data: bool,
}

pub async fn delete(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .daemon
        .app
        .delete_practice(&id, params.with_data)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_accounts(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<Vec<Account>> {
    Ok(Json(state.daemon.app.accounts(Some(&id)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFilter {
    practice: Option<String>,
}

/// `GET /v1/accounts?practice=`: every account, or one practice's.
pub async fn all_accounts(
    State(state): State<ApiState>,
    Params(filter): Params<AccountFilter>,
) -> Answer<Vec<Account>> {
    Ok(Json(
        state
            .daemon
            .app
            .accounts(filter.practice.as_deref())
            .await?,
    ))
}

pub async fn create_account(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    Body(body): Body<NewAccount>,
) -> Result<(StatusCode, Json<AccountCreated>), ApiError> {
    let created = state.daemon.app.create_account(&practice_id, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn show_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<Account> {
    Ok(Json(state.daemon.app.account(&id).await?))
}

pub async fn update_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<AccountUpdate>,
) -> Answer<Account> {
    Ok(Json(state.daemon.app.update_account(&id, body).await?))
}

pub async fn delete_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .daemon
        .app
        .delete_account(&id, params.with_data)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A secret's value. No Debug: the value must not reach a log by accident.
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub value: String,
}

pub async fn set_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
    Body(body): Body<SecretValue>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.set_secret(&id, &name, &body.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.delete_secret(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
