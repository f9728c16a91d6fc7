//! Webhook subscriptions and the delivery of the change feed to them: added (the
//! signing secret shown once), listed, removed, replayed from a sequence number; and
//! [`Deliverer::deliver_one`], which a daemon calls in a loop: it claims a due
//! subscription, sends its next batch — or the batch in flight again, as the same
//! message — signed with the Standard Webhooks scheme, and records the outcome: the
//! position moves on, or the next attempt is scheduled (exponential backoff, in the
//! database, so a restart resumes it), or after `delivery.max_attempts` the
//! subscription is dead.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::feed::{change_views, position_within, ChangeView};
use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use crate::config::DeliveryConfig;
use passerelle_model::feed::ChangeKind;
use passerelle_model::feed::SubscriptionState;
use passerelle_runtime::capabilities::netguard::{check_destination, GuardedResolver};
use passerelle_store::feed::ChangeFilter;
use passerelle_store::subscriptions::{NewSubscription, Subscription};

/// What `subscriptions add` and `POST /v1/subscriptions` ask for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSubscription {
    /// Where changes are POSTed (`https://…`; `http://` is allowed too).
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

/// The body of every delivery (Standard Webhooks' `type`/`timestamp`/`data` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryBody {
    /// Always `passerelle.changes`.
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: DeliveryData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryData {
    pub subscription: String,
    /// Every change up to this sequence number that the subscription covers is in this
    /// delivery or an earlier one.
    pub through: i64,
    pub changes: Vec<ChangeView>,
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
        self.store
            .add_subscription(&NewSubscription {
                id: &id,
                url: url.as_str(),
                practices: &add.practices,
                kinds: &kinds,
                patients: add.patients,
                allow_private: add.allow_private,
                secret: &secret,
                delivered_through: after,
            })
            .await?;
        self.audit(
            "subscription.add",
            &id,
            serde_json::json!({"url": url.as_str(), "practices": add.practices,
                "kinds": kinds, "patients": add.patients, "after": after}),
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
        if !self.store.remove_subscription(id).await? {
            return Err(ServiceError::not_found(format!("no subscription `{id}`")));
        }
        self.audit("subscription.remove", id, serde_json::json!({}))
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
        self.store.replay_subscription(id, after).await?;
        self.audit(
            "subscription.replay",
            id,
            serde_json::json!({"after": after}),
        )
        .await?;
        self.subscription(id).await
    }
}

/// What one call of [`Deliverer::deliver_one`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// No subscription was due.
    Idle,
    /// A subscription had nothing new; its position moved to the head, and it is due
    /// again a poll later.
    UpToDate,
    /// A batch of `changes` was acknowledged.
    Batch {
        subscription: String,
        changes: usize,
    },
    /// The attempt failed; retried later, or the subscription died.
    Failed { subscription: String, dead: bool },
}

/// Sends batches to subscriptions; one per delivery worker, claiming under its own name.
pub struct Deliverer {
    app: Arc<Passerelle>,
    daemon: String,
    config: DeliveryConfig,
    guarded: reqwest::Client,
    open: reqwest::Client,
}

fn delivery_client(
    config: &DeliveryConfig,
    allow_private: bool,
) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself, past the private-address guard.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private,
            trusted_hosts: Default::default(),
        }))
        .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

impl Deliverer {
    pub fn new(app: Arc<Passerelle>, daemon: String) -> anyhow::Result<Deliverer> {
        let config = app.config.delivery.clone();
        Ok(Deliverer {
            guarded: delivery_client(&config, config.allow_private)?,
            open: delivery_client(&config, true)?,
            app,
            daemon,
            config,
        })
    }

    /// The delay before attempt `attempts + 1` of a batch.
    fn backoff(&self, attempts: i64) -> i64 {
        let base = self.config.backoff_base_ms as i64;
        let max = (self.config.backoff_max_secs as i64).saturating_mul(1000);
        base.saturating_mul(1i64 << attempts.clamp(0, 30)).min(max)
    }

    /// Claims one due subscription and delivers its next batch.
    pub async fn deliver_one(&self, now_ms: i64) -> ServiceResult<Delivered> {
        let lease = (self.config.timeout_secs as i64 + 30) * 1000;
        let Some(sub) = self
            .app
            .store
            .claim_subscription(&self.daemon, now_ms, lease)
            .await?
        else {
            return Ok(Delivered::Idle);
        };
        let filter = ChangeFilter {
            practices: sub.practices.clone(),
            kinds: sub.kinds.clone(),
            through: None,
        };
        let (rows, through) = match sub.batch {
            // The batch in flight, again: the same changes, the same message id.
            Some((_, through)) => {
                let filter = ChangeFilter {
                    through: Some(through),
                    ..filter
                };
                let rows = self
                    .app
                    .store
                    .changes_after(sub.delivered_through, i64::MAX, &filter)
                    .await?;
                (rows, through)
            }
            None => {
                let page = self
                    .app
                    .feed_page(
                        sub.delivered_through,
                        i64::from(self.config.batch_size),
                        filter,
                    )
                    .await;
                let (rows, through) = match page {
                    Ok((rows, next_after, _, _)) => (rows, next_after),
                    Err(ServiceError::Gone(message)) => {
                        self.app
                            .store
                            .subscription_failed(&sub.id, &self.daemon, &message, 0, true)
                            .await?;
                        return Ok(Delivered::Failed {
                            subscription: sub.id,
                            dead: true,
                        });
                    }
                    Err(e) => return Err(e),
                };
                if rows.is_empty() {
                    self.app
                        .store
                        .subscription_delivered(
                            &sub.id,
                            &self.daemon,
                            through,
                            0,
                            now_ms + self.config.poll_ms as i64,
                        )
                        .await?;
                    return Ok(Delivered::UpToDate);
                }
                let from = rows[0].seq;
                if !self
                    .app
                    .store
                    .set_subscription_batch(&sub.id, &self.daemon, (from, through))
                    .await?
                {
                    return Ok(Delivered::Idle);
                }
                (rows, through)
            }
        };
        let count = rows.len();
        let from = rows.first().map_or(through, |r| r.seq);
        let message_id = format!("{}_{}_{}", sub.id, from, through);
        let body = DeliveryBody {
            kind: "passerelle.changes".into(),
            timestamp: chrono::DateTime::from_timestamp_millis(now_ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: DeliveryData {
                subscription: sub.id.clone(),
                through,
                changes: change_views(rows, sub.patients)?,
            },
        };
        let payload = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
        let outcome = self.post(&sub, &message_id, now_ms / 1000, payload).await;
        match outcome {
            Ok(()) => {
                self.app
                    .store
                    .subscription_delivered(&sub.id, &self.daemon, through, count as i64, now_ms)
                    .await?;
                self.app.metrics.delivered(count as u64);
                Ok(Delivered::Batch {
                    subscription: sub.id,
                    changes: count,
                })
            }
            Err(error) => {
                let dead = sub.attempts + 1 >= i64::from(self.config.max_attempts);
                let next = now_ms + self.backoff(sub.attempts);
                self.app
                    .store
                    .subscription_failed(&sub.id, &self.daemon, &error, next, dead)
                    .await?;
                if dead {
                    tracing::error!(
                        subscription = %sub.id,
                        attempts = sub.attempts + 1,
                        error = %error,
                        "delivery failed for good: the subscription is dead until `passerelle subscriptions replay {}`",
                        sub.id
                    );
                } else {
                    tracing::warn!(subscription = %sub.id, attempt = sub.attempts + 1, error = %error, "delivery failed; retrying later");
                }
                self.app.metrics.delivery_failed();
                Ok(Delivered::Failed {
                    subscription: sub.id,
                    dead,
                })
            }
        }
    }

    /// One signed POST; the error as shown in `subscriptions list` (no payload).
    async fn post(
        &self,
        sub: &Subscription,
        message_id: &str,
        timestamp: i64,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let secret = self
            .app
            .store
            .subscription_secret(&sub.id)
            .await
            .map_err(|e| e.to_string())?;
        let signature = standardwebhooks::Webhook::new(&secret)
            .and_then(|w| w.sign(message_id, timestamp, &payload))
            .map_err(|e| format!("cannot sign: {e}"))?;
        let client = if sub.allow_private {
            &self.open
        } else {
            &self.guarded
        };
        let response = client
            .post(&sub.url)
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, message_id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(payload)
            .send()
            .await
            .map_err(|e| {
                let private = std::error::Error::source(&e)
                    .into_iter()
                    .flat_map(|s| std::iter::successors(Some(s), |e| e.source()))
                    .any(|s| s.is::<passerelle_runtime::capabilities::netguard::PrivateAddress>());
                if private {
                    "the URL resolves only to private addresses (not allowed for this subscription)"
                        .to_string()
                } else if e.is_timeout() {
                    format!("no answer within {} s", self.config.timeout_secs)
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    e.without_url().to_string()
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}
