//! Accounts and their secrets: what may be added (checked before it is stored), changed,
//! removed; secret values are write-only (only names are ever returned), and the key
//! that seals them rotates here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use crate::check::{refuse_undeclared, AccountCheck};
use crate::practices::not_empty;
use passerelle_model::ids::validate_id;
use passerelle_model::public::double_option;
use passerelle_store::practices::Account;

/// An account to create.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Stable account id.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// The connector's name (it may be installed later).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub connector: String,
    /// A label (not blank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "\\S")]
    pub label: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets stored with the account, by name (write-only: never returned; each value
    /// at least 8 bytes). The check sees them before anything is stored.
    #[serde(default, skip_serializing_if = "SecretValues::is_empty")]
    pub secrets: SecretValues,
    /// Keep the account even though its check fails (the failure is reported). Without
    /// it an account whose check fails is refused (409 `check-failed`): nothing stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Secret values by name, as a request carries them: serialised only to be sent (the
/// daemon never returns them), and never printed — its `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValues(pub BTreeMap<String, String>);

impl utoipa::PartialSchema for SecretValues {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Secret values by name (names as ids; values at least 8 bytes; write-only)",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[A-Za-z0-9._-]{1,64}$")),
            ))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(8)),
            ))
            .write_only(Some(true))
            .into()
    }
}

impl utoipa::ToSchema for SecretValues {}

impl SecretValues {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Changes to an account: `settings` replaces all settings, `merge_settings` changes
/// some; `label` null clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// A label (not blank), or null to clear it.
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = "\\S")]
    pub label: Option<Option<String>>,
    /// Every setting (the ones not listed are removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, String>>,
    /// Settings merged over the current ones (or over `settings` when both are given):
    /// a value sets, null removes, a setting not listed is kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merge_settings: BTreeMap<String, Option<String>>,
    /// Keep the changed settings even though the account's check then fails (the
    /// failure is reported). Without it such a change is refused (409 `check-failed`):
    /// nothing changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// The account's own listing in the open-data export (booking URL, type), merged
    /// over its current one (a field absent is kept, null removes it); null: none, its
    /// practice's apply.
    #[serde(
        default,
        with = "passerelle_model::public::patch_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<passerelle_model::public::ListingPatch>, nullable)]
    pub listing: Option<Option<passerelle_model::public::ListingPatch>>,
}

/// An account as added or changed: whether its connector is installed yet (it cannot
/// run before), and what checking it found (see [`super::check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckedAccount {
    #[serde(flatten)]
    pub account: Account,
    pub connector_installed: bool,
    /// The settings against the connector's manifest and its `check()`; none when the
    /// connector is not installed, or when the account's settings did not change.
    pub check: Option<AccountCheck>,
}

/// A secret's name is an id; its value is long enough not to appear in a platform's
/// answer by chance.
fn validate_secret(name: &str, value: &str) -> ServiceResult<()> {
    validate_id("secret", name)?;
    if value.len() < passerelle_model::MIN_SECRET_BYTES {
        return Err(ServiceError::invalid(format!(
            "the value of secret `{name}` must be at least {} bytes (a shorter one could appear in a platform's answer by chance): nothing stored",
            passerelle_model::MIN_SECRET_BYTES
        )));
    }
    Ok(())
}

/// Refuses what a failed check says cannot work, unless forced (409 `check-failed`,
/// saying why and how to insist).
fn refuse_failed_check(
    check: Option<&AccountCheck>,
    force: bool,
    doing: &str,
) -> ServiceResult<()> {
    match check {
        Some(c) if !c.ok && !force => Err(ServiceError::conflict(
            "check-failed",
            format!(
                "account `{}` fails its check ({}: {}): nothing stored; correct its settings or secrets, or {doing} anyway with --force (force: true)",
                c.account_id,
                c.error_kind.map_or("error", |k| k.as_str()),
                c.detail.as_deref().unwrap_or("no detail"),
            ),
        )),
        _ => Ok(()),
    }
}

impl Passerelle {
    /// An account, or `NotFound`.
    pub async fn account(&self, id: &str) -> ServiceResult<Account> {
        self.store.account(id).await?.ok_or_else(|| {
            ServiceError::not_found(format!(
                "no account `{id}` (see `passerelle accounts list`)"
            ))
        })
    }

    /// The accounts of one practice (which must exist), or of all.
    pub async fn accounts(&self, practice: Option<&str>) -> ServiceResult<Vec<Account>> {
        if let Some(p) = practice {
            self.practice(p).await?;
        }
        Ok(self.store.list_accounts(practice).await?)
    }

    /// Creates an account of a practice on a connector (which may be installed later).
    pub async fn create_account(
        &self,
        practice_id: &str,
        new: NewAccount,
    ) -> ServiceResult<CheckedAccount> {
        self.practice(practice_id).await?;
        validate_id("account", &new.id)?;
        validate_id("connector", &new.connector)?;
        if let Some(label) = &new.label {
            not_empty("label", label)?;
        }
        if self.store.account(&new.id).await?.is_some() {
            return Err(ServiceError::conflict(
                "conflict",
                format!("account `{}` already exists", new.id),
            ));
        }
        if let Some(manifest) = self.manifest_for(&new.connector, practice_id).await? {
            refuse_undeclared(&new.settings, &manifest)?;
        }
        for (name, value) in &new.secrets.0 {
            validate_secret(name, value)?;
        }
        let candidate = Account {
            id: new.id.clone(),
            practice_id: practice_id.to_string(),
            connector: new.connector.clone(),
            label: new.label.clone(),
            settings: new.settings.clone(),
            secrets: new.secrets.0.keys().cloned().collect(),
            listing: None,
        };
        let connector_installed = self.connector_installed(&candidate).await?;
        // Checked before anything is stored, with the secrets given.
        let check = if connector_installed {
            Some(
                self.check_candidate(&candidate, Some(&new.secrets.0))
                    .await?,
            )
        } else {
            None
        };
        refuse_failed_check(check.as_ref(), new.force, "add it")?;
        let mut w = self.audited().await?;
        self.store
            .add_account_in(
                &mut w,
                &new.id,
                practice_id,
                &new.connector,
                new.label.as_deref(),
                &new.settings,
                &new.secrets.0,
            )
            .await?;
        self.commit_audited(
            w,
            "account.create",
            &new.id,
            serde_json::json!({"practice": practice_id, "connector": new.connector,
                "settings": new.settings.keys().collect::<Vec<_>>(),
                "secrets": new.secrets.0.keys().collect::<Vec<_>>(),
                "forced": new.force && check.as_ref().is_some_and(|c| !c.ok)}),
        )
        .await?;
        Ok(CheckedAccount {
            account: self.account(&new.id).await?,
            connector_installed,
            check,
        })
    }

    /// Whether a version of the account's connector runs for its practice.
    async fn connector_installed(&self, account: &Account) -> ServiceResult<bool> {
        Ok(self
            .store
            .connector_for(&account.connector, &account.practice_id)
            .await?
            .is_some())
    }

    /// Replaces or merges an account's settings, sets or clears its label, merges its
    /// listing. Changed settings are checked first: a change its check fails is refused
    /// unless forced.
    pub async fn update_account(
        &self,
        id: &str,
        update: AccountUpdate,
    ) -> ServiceResult<CheckedAccount> {
        let account = self.account(id).await?;
        if let Some(Some(label)) = &update.label {
            not_empty("label", label)?;
        }
        // `settings` replaces them all, then `merge_settings` changes some.
        let settings = match (&update.settings, update.merge_settings.is_empty()) {
            (None, true) => None,
            (all, _) => {
                let mut merged = all.clone().unwrap_or_else(|| account.settings.clone());
                for (key, value) in &update.merge_settings {
                    match value {
                        Some(v) => merged.insert(key.clone(), v.clone()),
                        None => merged.remove(key),
                    };
                }
                Some(merged)
            }
        };
        if let (Some(settings), Some(manifest)) = (
            &settings,
            self.manifest_for(&account.connector, &account.practice_id)
                .await?,
        ) {
            refuse_undeclared(settings, &manifest)?;
        }
        let listing = match &update.listing {
            None => None,
            Some(None) => Some(None),
            Some(Some(patch)) => Some(
                patch
                    .apply(account.listing.clone())
                    .map_err(ServiceError::invalid)?,
            ),
        };
        let connector_installed = self.connector_installed(&account).await?;
        // Changed settings are checked as they would be, before they are stored.
        let check = match &settings {
            Some(settings) if connector_installed => {
                let candidate = Account {
                    settings: settings.clone(),
                    ..account.clone()
                };
                Some(self.check_candidate(&candidate, None).await?)
            }
            _ => None,
        };
        refuse_failed_check(check.as_ref(), update.force, "change it")?;
        let mut w = self.audited().await?;
        if let Some(settings) = &settings {
            self.store
                .update_account_settings_in(&mut w, id, settings)
                .await?;
        }
        if let Some(label) = &update.label {
            self.store
                .set_account_label_in(&mut w, id, label.as_deref())
                .await?;
        }
        if let Some(listing) = &listing {
            self.store
                .set_account_listing_in(&mut w, id, listing.as_ref())
                .await?;
        }
        self.commit_audited(
            w,
            "account.update",
            id,
            serde_json::json!({"settings": settings.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
                "label": update.label.is_some(), "listing": listing,
                "forced": update.force && check.as_ref().is_some_and(|c| !c.ok)}),
        )
        .await?;
        Ok(CheckedAccount {
            account: self.account(id).await?,
            connector_installed,
            check,
        })
    }

    /// Deletes an account with everything it owns; `with_data` must say so.
    pub async fn delete_account(&self, id: &str, with_data: bool) -> ServiceResult<()> {
        self.account(id).await?;
        if !with_data {
            return Err(ServiceError::invalid(
                "deleting an account deletes its secrets, appointments, slots and runs: repeat with --with-data (with_data=true)",
            ));
        }
        let mut w = self.audited().await?;
        self.store
            .delete_account_in(&mut w, id, super::records::forgotten)
            .await?;
        self.commit_audited(
            w,
            "account.delete",
            id,
            serde_json::json!({"with_data": true}),
        )
        .await?;
        tracing::info!(account = %id, "account deleted with its data");
        Ok(())
    }

    /// Stores a secret's value (never returned; only its name is listed).
    pub async fn set_secret(&self, account: &str, name: &str, value: &str) -> ServiceResult<()> {
        self.account(account).await?;
        validate_secret(name, value)?;
        let mut w = self.audited().await?;
        self.store
            .set_secret_in(&mut w, account, name, value)
            .await?;
        // The name only: a secret's value never reaches the trail.
        self.commit_audited(
            w,
            "secret.set",
            account,
            serde_json::json!({"secret": name}),
        )
        .await
    }

    /// Forgets a secret.
    pub async fn delete_secret(&self, account: &str, name: &str) -> ServiceResult<()> {
        self.account(account).await?;
        let mut w = self.audited().await?;
        if !self.store.delete_secret_in(&mut w, account, name).await? {
            return Err(ServiceError::not_found(format!(
                "account `{account}` has no secret `{name}`"
            )));
        }
        self.commit_audited(
            w,
            "secret.delete",
            account,
            serde_json::json!({"secret": name}),
        )
        .await
    }
}

/// What `passerelle secrets rotate-key` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRotation {
    /// Secrets sealed again.
    pub sealed: u64,
    /// The key that seals from now on (its id, not the key).
    pub key_id: String,
    /// Where that key is.
    pub key: String,
}

impl Passerelle {
    /// Seals every account secret under a new key, in one transaction. With the data
    /// directory's key: a new `secrets.key` is generated and the old one kept as
    /// `secrets.key.previous`. With a key from the environment or a systemd credential
    /// (several daemons share it): the operator installs the new key there first, with
    /// the old one as `PASSERELLE_SECRETS_KEY_PREVIOUS`, and this seals everything under
    /// it. Refused while daemons run on the database: they hold the old key.
    pub async fn rotate_secrets_key(&self) -> ServiceResult<KeyRotation> {
        use passerelle_store::sealed::KeySource;
        let live = self.daemons().await?;
        if !live.is_empty() {
            return Err(ServiceError::Conflict {
                code: "daemons-running",
                message: format!(
                    "{} daemon(s) run on this database ({}): stop them first, they hold the current key",
                    live.len(),
                    live.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        match self.keyring.source() {
            KeySource::DataDir(path) => {
                let next = self.keyring.start_rotation()?;
                let sealed = self.store.reseal_secrets(&next).await?;
                self.audit(
                    "secrets.rotate-key",
                    "secrets",
                    serde_json::json!({"sealed": sealed, "key_id": next.key_id()}),
                )
                .await?;
                // The audit trail (this entry included) re-tagged under the new key before
                // the old one is retired: a trail under a key nobody holds any more could
                // not be verified.
                let next = std::sync::Arc::new(next);
                self.store
                    .clone()
                    .with_keyring(next.clone())
                    .key_audit_trail()
                    .await?;
                next.finish_rotation()?;
                Ok(KeyRotation {
                    sealed,
                    key_id: next.key_id().to_string(),
                    key: path.display().to_string(),
                })
            }
            other => {
                let sealed = self.store.reseal_secrets(&self.keyring).await?;
                self.audit(
                    "secrets.rotate-key",
                    "secrets",
                    serde_json::json!({"sealed": sealed, "key_id": self.keyring.key_id()}),
                )
                .await?;
                Ok(KeyRotation {
                    sealed,
                    key_id: self.keyring.key_id().to_string(),
                    key: match other {
                        KeySource::Credential(p) => p.display().to_string(),
                        _ => "PASSERELLE_SECRETS_KEY".into(),
                    },
                })
            }
        }
    }
}
