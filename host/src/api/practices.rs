//! Admin API: practices, their accounts, and the accounts' secrets (write-only: a
//! secret's value is never returned, only its name).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, Body, Params, PathParams};
use crate::store::practices::{validate_id, Account, Practice};

/// A practice as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PracticeView {
    #[serde(flatten)]
    pub practice: Practice,
    /// The cron expression in force (its own or the default).
    pub effective_schedule: String,
    /// The next scheduled sync, RFC 3339 in the practice's time zone.
    pub next_sync: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accounts: Option<Vec<Account>>,
}

fn view(state: &ApiState, practice: Practice, accounts: Option<Vec<Account>>) -> PracticeView {
    PracticeView::new(
        practice,
        &state.daemon.app.config.schedule,
        state.daemon.now(),
        accounts,
    )
}

impl PracticeView {
    /// The practice with its effective schedule and next sync after `now`.
    pub fn new(
        practice: Practice,
        config: &crate::config::ScheduleConfig,
        now: chrono::DateTime<chrono::Utc>,
        accounts: Option<Vec<Account>>,
    ) -> PracticeView {
        let (effective_schedule, next_sync) = match practice.schedule(config) {
            Ok(s) => (
                s.expression().to_string(),
                s.next_after(now)
                    .map(|t| t.with_timezone(&s.timezone()).to_rfc3339()),
            ),
            Err(_) => (practice.schedule.clone().unwrap_or_default(), None),
        };
        PracticeView {
            practice,
            effective_schedule,
            next_sync,
            accounts,
        }
    }

    /// "schedule `0 3 * * *` (Europe/Paris, default), next sync …": what the CLI prints.
    pub fn schedule_line(&self) -> String {
        format!(
            "schedule `{}` ({}{}), next sync {}",
            self.effective_schedule,
            self.practice.timezone,
            if self.practice.schedule.is_none() {
                ", default"
            } else {
                ""
            },
            self.next_sync.as_deref().unwrap_or("never")
        )
    }
}

async fn practice_or_404(state: &ApiState, id: &str) -> Result<Practice, ApiError> {
    state
        .daemon
        .app
        .store
        .practice(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no practice `{id}`")))
}

async fn account_or_404(state: &ApiState, id: &str) -> Result<Account, ApiError> {
    state
        .daemon
        .app
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account `{id}`")))
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<PracticeView>>, ApiError> {
    let practices = state.daemon.app.store.list_practices().await?;
    Ok(Json(
        practices
            .into_iter()
            .map(|p| view(&state, p, None))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPractice {
    id: String,
    name: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    /// Its own cron expression; absent: the default schedule.
    schedule: Option<String>,
}

fn default_timezone() -> String {
    crate::schedule::DEFAULT_TIMEZONE.into()
}

pub async fn create(
    State(state): State<ApiState>,
    Body(body): Body<NewPractice>,
) -> Result<Response, ApiError> {
    validate_id("practice", &body.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request("`name` must not be empty"));
    }
    let candidate = Practice {
        id: body.id.clone(),
        name: body.name.clone(),
        timezone: body.timezone.clone(),
        schedule: body.schedule.clone(),
    };
    candidate
        .schedule(&state.daemon.app.config.schedule)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let store = &state.daemon.app.store;
    if store.practice(&body.id).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "practice `{}` already exists",
            body.id
        )));
    }
    store
        .add_practice(&body.id, &body.name, &body.timezone)
        .await?;
    let practice = match &body.schedule {
        Some(cron) => store.set_practice_schedule(&body.id, Some(cron)).await?,
        None => candidate,
    };
    state.daemon.practices_changed();
    Ok((
        StatusCode::CREATED,
        Json(view(&state, practice, Some(vec![]))),
    )
        .into_response())
}

pub async fn show(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<PracticeView>, ApiError> {
    let practice = practice_or_404(&state, &id).await?;
    let accounts = state.daemon.app.store.list_accounts(Some(&id)).await?;
    Ok(Json(view(&state, practice, Some(accounts))))
}

/// `schedule`: a cron expression, or null for the default; absent: unchanged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeUpdate {
    name: Option<String>,
    timezone: Option<String>,
    #[serde(default, with = "serde_with_double_option")]
    schedule: Option<Option<String>>,
}

/// Tells "absent" (unchanged) from `null` (reset to the default).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

pub async fn update(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<PracticeUpdate>,
) -> Result<Json<PracticeView>, ApiError> {
    let mut practice = practice_or_404(&state, &id).await?;
    if let Some(name) = &body.name {
        if name.trim().is_empty() {
            return Err(ApiError::bad_request("`name` must not be empty"));
        }
        practice.name = name.clone();
    }
    if let Some(tz) = &body.timezone {
        practice.timezone = tz.clone();
    }
    if let Some(schedule) = &body.schedule {
        practice.schedule = schedule.clone();
    }
    // Validate everything before changing anything.
    practice
        .schedule(&state.daemon.app.config.schedule)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let store = &state.daemon.app.store;
    store
        .update_practice(&id, body.name.as_deref(), body.timezone.as_deref())
        .await?;
    if let Some(schedule) = &body.schedule {
        store
            .set_practice_schedule(&id, schedule.as_deref())
            .await?;
    }
    state.daemon.practices_changed();
    let practice = practice_or_404(&state, &id).await?;
    let accounts = store.list_accounts(Some(&id)).await?;
    Ok(Json(view(&state, practice, Some(accounts))))
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
    practice_or_404(&state, &id).await?;
    if !params.with_data {
        return Err(ApiError::bad_request(
            "deleting a practice deletes its accounts, secrets, appointments, slots and runs: repeat with ?with_data=true",
        ));
    }
    state.daemon.app.store.delete_practice(&id).await?;
    state.daemon.practices_changed();
    tracing::info!(practice = %id, "practice deleted with its data");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_accounts(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<Account>>, ApiError> {
    practice_or_404(&state, &id).await?;
    Ok(Json(state.daemon.app.store.list_accounts(Some(&id)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    id: String,
    connector: String,
    label: Option<String>,
    #[serde(default)]
    settings: BTreeMap<String, String>,
}

pub async fn create_account(
    State(state): State<ApiState>,
    PathParams(practice_id): PathParams<String>,
    Body(body): Body<NewAccount>,
) -> Result<Response, ApiError> {
    practice_or_404(&state, &practice_id).await?;
    validate_id("account", &body.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    validate_id("connector", &body.connector).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let store = &state.daemon.app.store;
    if store.account(&body.id).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "account `{}` already exists",
            body.id
        )));
    }
    let account = store
        .add_account(
            &body.id,
            &practice_id,
            &body.connector,
            body.label.as_deref(),
            &body.settings,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account)).into_response())
}

pub async fn show_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(account_or_404(&state, &id).await?))
}

/// `settings` replaces all settings; `label` null clears it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    #[serde(default, with = "serde_with_double_option")]
    label: Option<Option<String>>,
    settings: Option<BTreeMap<String, String>>,
}

pub async fn update_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Body(body): Body<AccountUpdate>,
) -> Result<Json<Account>, ApiError> {
    account_or_404(&state, &id).await?;
    let store = &state.daemon.app.store;
    if let Some(settings) = &body.settings {
        store.update_account_settings(&id, settings).await?;
    }
    if let Some(label) = &body.label {
        store.set_account_label(&id, label.as_deref()).await?;
    }
    Ok(Json(account_or_404(&state, &id).await?))
}

pub async fn delete_account(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    Params(params): Params<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    account_or_404(&state, &id).await?;
    if !params.with_data {
        return Err(ApiError::bad_request(
            "deleting an account deletes its secrets, appointments, slots and runs: repeat with ?with_data=true",
        ));
    }
    state.daemon.app.store.delete_account(&id).await?;
    tracing::info!(account = %id, "account deleted with its data");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    value: String,
}

// No Debug: the value must not reach a log by accident.
pub async fn set_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
    Body(body): Body<SecretValue>,
) -> Result<StatusCode, ApiError> {
    account_or_404(&state, &id).await?;
    validate_id("secret", &name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if body.value.is_empty() {
        return Err(ApiError::bad_request("`value` must not be empty"));
    }
    state
        .daemon
        .app
        .store
        .set_secret(&id, &name, &body.value)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_secret(
    State(state): State<ApiState>,
    PathParams((id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    account_or_404(&state, &id).await?;
    if !state.daemon.app.store.delete_secret(&id, &name).await? {
        return Err(ApiError::not_found(format!(
            "account `{id}` has no secret `{name}`"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
