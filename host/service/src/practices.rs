//! Practices: what may be created, changed and deleted, and how a practice is shown
//! (its effective schedule and next sync). Their accounts and secrets: [`super::accounts`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::ids::validate_id;
use passerelle_model::schema::{cron_or_null, TimeZone};
use passerelle_store::notify::Change;
use passerelle_store::practices::{Account, Practice};

/// A practice as shown: with its effective schedule, next sync and (on its own page)
/// its accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

impl PracticeView {
    /// The practice with its effective schedule and next sync after `now`.
    pub fn new(
        practice: Practice,
        config: &crate::config::ScheduleConfig,
        now: DateTime<Utc>,
        accounts: Option<Vec<Account>>,
    ) -> PracticeView {
        let (effective_schedule, next_sync) = match config.schedule_of(&practice) {
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
}

/// A practice to create.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPractice {
    /// Stable id, used in every other request.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// The practice's name (not blank).
    #[schema(pattern = "\\S")]
    pub name: String,
    /// IANA time zone; default Europe/Paris.
    #[serde(default = "default_timezone")]
    #[schema(value_type = TimeZone, default = "Europe/Paris")]
    pub timezone: String,
    /// Its own cron expression (five fields, in its time zone); absent or null: the
    /// default schedule.
    #[schema(schema_with = cron_or_null)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

fn default_timezone() -> String {
    crate::schedule::DEFAULT_TIMEZONE.into()
}

/// Changes to a practice; an absent field is unchanged. `schedule`: a cron expression,
/// or null for the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PracticeUpdate {
    /// A new name (not blank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "\\S")]
    pub name: Option<String>,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TimeZone>)]
    pub timezone: Option<String>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = cron_or_null)]
    pub schedule: Option<Option<String>>,
    /// What the open-data export publishes about the practice, merged over what it
    /// published before (a field absent is kept, null removes it); null: not published.
    #[serde(
        default,
        with = "passerelle_model::public::patch_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<passerelle_model::public::PublicPatch>, nullable)]
    pub public: Option<Option<passerelle_model::public::PublicPatch>>,
}

use passerelle_model::public::double_option;

pub(crate) fn not_empty(field: &str, value: &str) -> ServiceResult<()> {
    if value.trim().is_empty() {
        return Err(ServiceError::invalid(format!(
            "`{field}` must not be empty"
        )));
    }
    Ok(())
}

impl Passerelle {
    fn practice_view(
        &self,
        practice: Practice,
        now: DateTime<Utc>,
        accounts: Option<Vec<Account>>,
    ) -> PracticeView {
        PracticeView::new(practice, &self.config.schedule, now, accounts)
    }

    /// A practice, or `NotFound`.
    pub async fn practice(&self, id: &str) -> ServiceResult<Practice> {
        self.store.practice(id).await?.ok_or_else(|| {
            ServiceError::not_found(format!(
                "no practice `{id}` (see `passerelle practices list`)"
            ))
        })
    }

    /// Every practice, with its schedule and next sync after `now`.
    pub async fn practices(&self, now: DateTime<Utc>) -> ServiceResult<Vec<PracticeView>> {
        Ok(self
            .store
            .list_practices()
            .await?
            .into_iter()
            .map(|p| self.practice_view(p, now, None))
            .collect())
    }

    /// One practice with its accounts.
    pub async fn show_practice(&self, id: &str, now: DateTime<Utc>) -> ServiceResult<PracticeView> {
        let practice = self.practice(id).await?;
        let accounts = self.store.list_accounts(Some(id)).await?;
        Ok(self.practice_view(practice, now, Some(accounts)))
    }

    /// Creates a practice: a valid id not taken, a name, a known time zone and a valid
    /// schedule, all checked before anything is written.
    pub async fn create_practice(
        &self,
        new: NewPractice,
        now: DateTime<Utc>,
    ) -> ServiceResult<PracticeView> {
        validate_id("practice", &new.id)?;
        not_empty("name", &new.name)?;
        let candidate = Practice {
            id: new.id.clone(),
            name: new.name.clone(),
            timezone: new.timezone.clone(),
            schedule: new.schedule.clone(),
            public: None,
        };
        self.config
            .schedule
            .schedule_of(&candidate)
            .map_err(|e| ServiceError::invalid(format!("{e:#}")))?;
        if self.store.practice(&new.id).await?.is_some() {
            return Err(ServiceError::conflict(
                "conflict",
                format!("practice `{}` already exists", new.id),
            ));
        }
        let mut w = self.audited().await?;
        self.store
            .add_practice_in(&mut w, &new.id, &new.name, &new.timezone)
            .await?;
        if let Some(cron) = &new.schedule {
            self.store
                .set_practice_schedule_in(&mut w, &new.id, Some(cron))
                .await?;
        }
        self.commit_audited(
            w,
            "practice.create",
            &new.id,
            serde_json::json!({"timezone": new.timezone, "schedule": new.schedule}),
        )
        .await?;
        self.announce(Change::Practices).await;
        Ok(self.practice_view(candidate, now, Some(vec![])))
    }

    /// Changes a practice's name, time zone or schedule, all validated first.
    pub async fn update_practice(
        &self,
        id: &str,
        update: PracticeUpdate,
        now: DateTime<Utc>,
    ) -> ServiceResult<PracticeView> {
        let mut practice = self.practice(id).await?;
        if let Some(name) = &update.name {
            not_empty("name", name)?;
            practice.name = name.clone();
        }
        if let Some(tz) = &update.timezone {
            practice.timezone = tz.clone();
        }
        if let Some(schedule) = &update.schedule {
            practice.schedule = schedule.clone();
        }
        let public = match &update.public {
            None => None,
            Some(None) => Some(None),
            Some(Some(patch)) => Some(Some(patch.apply(practice.public.clone()).map_err(
                |e| match e {
                    passerelle_model::public::PatchError::NotPublished => {
                        ServiceError::conflict("not-published", e.to_string())
                    }
                    passerelle_model::public::PatchError::Invalid(m) => ServiceError::invalid(m),
                },
            )?)),
        };
        self.config
            .schedule
            .schedule_of(&practice)
            .map_err(|e| ServiceError::invalid(format!("{e:#}")))?;
        let mut w = self.audited().await?;
        self.store
            .update_practice_in(
                &mut w,
                id,
                update.name.as_deref(),
                update.timezone.as_deref(),
            )
            .await?;
        if let Some(schedule) = &update.schedule {
            self.store
                .set_practice_schedule_in(&mut w, id, schedule.as_deref())
                .await?;
        }
        if let Some(public) = &public {
            self.store
                .set_practice_public_in(&mut w, id, public.as_ref())
                .await?;
        }
        self.commit_audited(
            w,
            "practice.update",
            id,
            serde_json::json!({"name": update.name.is_some(), "timezone": update.timezone, "schedule": update.schedule, "public": update.public}),
        )
        .await?;
        self.announce(Change::Practices).await;
        self.show_practice(id, now).await
    }

    /// Deletes a practice with everything it owns; `with_data` must say so.
    pub async fn delete_practice(&self, id: &str, with_data: bool) -> ServiceResult<()> {
        self.practice(id).await?;
        if !with_data {
            return Err(ServiceError::invalid(
                "deleting a practice deletes its accounts, secrets, appointments, slots and runs: repeat with ?with_data=true",
            ));
        }
        let mut w = self.audited().await?;
        self.store
            .delete_practice_in(&mut w, id, super::records::forgotten)
            .await?;
        self.commit_audited(
            w,
            "practice.delete",
            id,
            serde_json::json!({"with_data": true}),
        )
        .await?;
        self.announce(Change::Practices).await;
        tracing::info!(practice = %id, "practice deleted with its data");
        Ok(())
    }
}
