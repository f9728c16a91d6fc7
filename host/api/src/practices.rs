//! Admin API: practices, their accounts, and the accounts' secrets (write-only: a
//! secret's value is never returned, only its name). Each handler translates one request
//! into one call of the service ([`passerelle_service::practices`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use passerelle_wire::SecretValue;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, ErrorBody, Params, PathParams};
use passerelle_service::accounts::{AccountUpdate, CheckedAccount, NewAccount};
use passerelle_service::check::AccountCheck;
use passerelle_service::practices::{NewPractice, PracticeUpdate, PracticeView};
use passerelle_store::practices::Account;

type Answer<T> = Result<Json<T>, ApiError>;

#[utoipa::path(
    get,
    path = "/v1/practices",
    operation_id = "listPractices",
    tag = "practices",
    summary = "List practices, with their schedules and next sync",
    responses(
        (status = 200, description = "Practices", body = [PracticeView]),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer")))
    ),
)]
pub async fn list(State(state): State<ApiState>) -> Answer<Vec<PracticeView>> {
    Ok(Json(state.daemon.app.practices(state.daemon.now()).await?))
}

#[utoipa::path(
    post,
    path = "/v1/practices",
    operation_id = "createPractice",
    tag = "practices",
    summary = "Create a practice",
    request_body = NewPractice,
    responses(
        (status = 201, description = "Created", body = PracticeView),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
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

#[utoipa::path(
    get,
    path = "/v1/practices/{id}",
    operation_id = "showPractice",
    tag = "practices",
    summary = "Show a practice with its accounts",
    params(("id" = String, Path, description = "Practice id")),
    responses(
        (status = 200, description = "The practice", body = PracticeView),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
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

#[utoipa::path(
    patch,
    path = "/v1/practices/{id}",
    operation_id = "updatePractice",
    tag = "practices",
    summary = "Update a practice (absent fields unchanged; schedule null resets to the default)",
    params(("id" = String, Path, description = "Practice id")),
    request_body = PracticeUpdate,
    responses(
        (status = 200, description = "The practice", body = PracticeView),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Public metadata for a practice not published yet without a department (code not-published)", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Must be true: deleting takes every record of it with it.
    #[param(required = true, value_type = passerelle_model::schema::Confirmed)]
    with_data: Option<bool>,
}

impl DeleteParams {
    /// Missing is refused by the service with a message that says what to add.
    fn confirmed(&self) -> bool {
        self.with_data == Some(true)
    }
}

#[utoipa::path(
    delete,
    path = "/v1/practices/{id}",
    operation_id = "deletePractice",
    tag = "practices",
    summary = "Delete a practice with all its data (accounts, secrets, appointments, slots, runs); needs with_data=true",
    params(("id" = String, Path, description = "Practice id"), DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn delete(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .daemon
        .app
        .delete_practice(&id, params.confirmed())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/practices/{id}/accounts",
    operation_id = "listAccounts",
    tag = "accounts",
    summary = "List a practice's accounts",
    params(("id" = String, Path, description = "Practice id")),
    responses(
        (status = 200, description = "Accounts", body = [Account]),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn list_accounts(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<Vec<Account>> {
    Ok(Json(state.daemon.app.accounts(Some(&id)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountFilter {
    /// Only this practice's accounts.
    practice: Option<String>,
}

/// `GET /v1/accounts?practice=`: every account, or one practice's.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    operation_id = "listAllAccounts",
    tag = "accounts",
    summary = "List accounts (all, or one practice's)",
    params(AccountFilter),
    responses(
        (status = 200, description = "Accounts", body = [Account]),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
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

#[utoipa::path(
    post,
    path = "/v1/practices/{id}/accounts",
    operation_id = "createAccount",
    tag = "accounts",
    summary = "Add an account to a practice, with its secrets if given; checked first (its connector's check()), refused when that fails unless force",
    params(("id" = String, Path, description = "Practice id")),
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created", body = CheckedAccount),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists: the id is taken (code conflict), a setting the connector does not declare (undeclared-setting), or the account fails its check and force is not set (check-failed; nothing stored)", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn create_account(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    Body(body): Body<NewAccount>,
) -> Result<(StatusCode, Json<CheckedAccount>), ApiError> {
    let created = state.daemon.app.create_account(&practice_id, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    operation_id = "showAccount",
    tag = "accounts",
    summary = "Show an account (secret names, never values)",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn show_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<Account> {
    Ok(Json(state.daemon.app.account(&id).await?))
}

#[utoipa::path(
    patch,
    path = "/v1/accounts/{id}",
    operation_id = "updateAccount",
    tag = "accounts",
    summary = "Update an account's label or settings (settings replace the old ones, merge_settings changes some; settings its connector does not declare are refused); changed settings are checked before they are stored",
    params(("id" = String, Path, description = "Account id")),
    request_body = AccountUpdate,
    responses(
        (status = 200, description = "The account, checked", body = CheckedAccount),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "A setting the account's connector does not declare (code undeclared-setting), or changed settings its check fails without force (check-failed; nothing changed)", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn update_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<AccountUpdate>,
) -> Answer<CheckedAccount> {
    Ok(Json(state.daemon.app.update_account(&id, body).await?))
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/check",
    operation_id = "checkAccount",
    tag = "accounts",
    summary = "Check an account: its settings against its connector's manifest, then the connector's check() (network and secrets, no records)",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "What the check found (ok or why not)", body = AccountCheck),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
    ),
)]
pub async fn check_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Answer<AccountCheck> {
    Ok(Json(state.daemon.app.check_account(&id).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    operation_id = "deleteAccount",
    tag = "accounts",
    summary = "Delete an account with its data; needs with_data=true",
    params(("id" = String, Path, description = "Account id"), DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn delete_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .daemon
        .app
        .delete_account(&id, params.confirmed())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{id}/secrets/{name}",
    operation_id = "setSecret",
    tag = "accounts",
    summary = "Set a secret (write-only: never returned)",
    params(("id" = String, Path, description = "Account id"), ("name" = String, Path, description = "Secret name", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body = SecretValue,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Invalid request or body", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody)
    ),
)]
pub async fn set_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
    Body(body): Body<SecretValue>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.set_secret(&id, &name, &body.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}/secrets/{name}",
    operation_id = "deleteSecret",
    tag = "accounts",
    summary = "Remove a secret",
    params(("id" = String, Path, description = "Account id"), ("name" = String, Path, description = "Secret name", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 404, description = "Not found", body = ErrorBody)
    ),
)]
pub async fn delete_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.daemon.app.delete_secret(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
