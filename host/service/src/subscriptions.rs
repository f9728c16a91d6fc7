//! Webhook subscriptions, their rules: added (the destination checked, the signing
//! secret shown once), listed, removed, replayed from a sequence number. Sending the
//! feed to them is [`crate::delivery`].

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::feed::position_within;
use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::feed::ChangeKind;
use passerelle_model::feed::SubscriptionState;
use passerelle_runtime::capabilities::netguard::check_destination;
use passerelle_store::subscriptions::{NewSubscription, Subscription};

/// What `subscriptions add` and `POST /v1/subscriptions` ask for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSubscription {
    /// Where changes are POSTed (`https://…`; `http://` too, but not with `patients`
    /// unless `allow_cleartext`).
    #[schema(
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub url: String,
    /// Only these practices' changes (all when empty).
    #[serde(default)]
    pub practices: Vec<String>,
    /// Only these kinds (`appointment`, `slot`; all when empty).
    #[serde(default)]
    pub kinds: Vec<ChangeKind>,
    /// Deliver patients' names, birth dates, phones and e-mails (initials otherwise).
    #[serde(default)]
    pub patients: bool,
    /// The URL may be a private or loopback address.
    #[serde(default)]
    pub allow_private: bool,
    /// With `patients`, the URL may be `http://`: patients' full records cross the
    /// network in clear. Refused otherwise; recorded in the audit trail.
    #[serde(default)]
    pub allow_cleartext: bool,
    /// Deliver from after this sequence number (default: the feed's head, i.e. only
    /// changes made from now on; 0 for everything the feed keeps).
    #[serde(
        default,
        deserialize_with = "passerelle_model::schema::whole_number_opt"
    )]
    #[schema(minimum = 0)]
    pub after: Option<i64>,
}

/// A subscription as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub practices: Vec<String>,
    pub kinds: Vec<ChangeKind>,
    pub patients: bool,
    pub allow_private: bool,
    pub state: SubscriptionState,
    /// Every matching change up to this sequence number was acknowledged.
    pub delivered_through: i64,
    /// Failed attempts of the batch in flight.
    pub attempts: i64,
    /// When the next attempt is due (RFC 3339), while retrying.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub delivered_changes: i64,
    pub created_at: String,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> SubscriptionView {
        SubscriptionView {
            next_attempt_at: (s.attempts > 0)
                .then(|| chrono::DateTime::from_timestamp_millis(s.next_attempt_ms))
                .flatten()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            id: s.id,
            url: s.url,
            practices: s.practices,
            kinds: s.kinds,
            patients: s.patients,
            allow_private: s.allow_private,
            state: s.state,
            delivered_through: s.delivered_through,
            attempts: s.attempts,
            last_error: s.last_error,
            delivered_changes: s.delivered_changes,
            created_at: s.created_at,
        }
    }
}

/// A subscription just added: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// The Standard Webhooks signing secret (`whsec_…`). Not shown again: give it to
    /// the receiver now.
    pub secret: String,
}

fn validate_url(add: &AddSubscription) -> ServiceResult<url::Url> {
    let url = &add.url;
    if passerelle_model::schema::pattern_breach(add).is_some() {
        return Err(ServiceError::invalid(format!(
            "`{url}`: a subscription's URL is http:// or https://, a lower-case host name or an IPv4 address, an optional port and a plain path (letters, digits, . _ ~ / -)"
        )));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| ServiceError::invalid(format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ServiceError::invalid(format!(
            "`{url}`: a subscription's URL is http:// or https:// with a host"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ServiceError::invalid(
            "put no credentials in a subscription's URL: deliveries are signed with its secret",
        ));
    }
    Ok(parsed)
}

impl Passerelle {
    /// Adds a subscription; its secret is in the answer, and only there.
    pub async fn add_subscription(
        &self,
        add: &AddSubscription,
    ) -> ServiceResult<CreatedSubscription> {
        let url = validate_url(add)?;
        if add.patients && url.scheme() == "http" && !add.allow_cleartext {
            return Err(ServiceError::conflict(
                "cleartext-destination",
                format!(
                    "`{url}` is http://: patients' names, birth dates, phones and e-mails would cross the network in clear. Use https://, or add the subscription with --allow-cleartext (`allow_cleartext`) if the link is protected otherwise"
                ),
            ));
        }
        for p in &add.practices {
            self.practice(p).await?;
        }
        let allow_private = add.allow_private || self.config.delivery.allow_private;
        check_destination(
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(443),
            allow_private,
        )
        .await
        .map_err(|reason| {
            ServiceError::conflict(
                "private-destination",
                format!(
                "{reason}: add the subscription with --allow-private (`allow_private`), or set delivery.allow_private"
            ))
        })?;
        let state = self.store.feed_state().await?;
        let after = add.after.unwrap_or(state.head);
        position_within(after, state)?;
        let mut kinds = add.kinds.clone();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let mut bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut bytes);
        let id = format!("sub_{}", hex::encode(bytes));
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        use base64::Engine;
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let mut w = self.audited().await?;
        self.store
            .add_subscription_in(
                &mut w,
                &NewSubscription {
                    id: &id,
                    url: url.as_str(),
                    practices: &add.practices,
                    kinds: &kinds,
                    patients: add.patients,
                    allow_private: add.allow_private,
                    secret: &secret,
                    delivered_through: after,
                },
            )
            .await?;
        self.commit_audited(
            w,
            "subscription.add",
            &id,
            serde_json::json!({"url": url.as_str(), "practices": add.practices,
                "kinds": kinds, "patients": add.patients, "after": after,
                "allow_private": add.allow_private, "allow_cleartext": add.allow_cleartext}),
        )
        .await?;
        let subscription = self.subscription(&id).await?;
        Ok(CreatedSubscription {
            subscription,
            secret,
        })
    }

    pub async fn subscriptions(&self) -> ServiceResult<Vec<SubscriptionView>> {
        Ok(self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .map(SubscriptionView::from)
            .collect())
    }

    pub async fn subscription(&self, id: &str) -> ServiceResult<SubscriptionView> {
        self.store
            .subscription(id)
            .await?
            .map(SubscriptionView::from)
            .ok_or_else(|| ServiceError::not_found(format!("no subscription `{id}`")))
    }

    pub async fn remove_subscription(&self, id: &str) -> ServiceResult<()> {
        let mut w = self.audited().await?;
        if !self.store.remove_subscription_in(&mut w, id).await? {
            return Err(ServiceError::not_found(format!("no subscription `{id}`")));
        }
        self.commit_audited(w, "subscription.remove", id, serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// Delivers again every change after `after` (dead subscriptions come back).
    pub async fn replay_subscription(
        &self,
        id: &str,
        after: i64,
    ) -> ServiceResult<SubscriptionView> {
        self.subscription(id).await?;
        position_within(after, self.store.feed_state().await?)?;
        let mut w = self.audited().await?;
        self.store.replay_subscription_in(&mut w, id, after).await?;
        self.commit_audited(
            w,
            "subscription.replay",
            id,
            serde_json::json!({"after": after}),
        )
        .await?;
        self.subscription(id).await
    }
}
