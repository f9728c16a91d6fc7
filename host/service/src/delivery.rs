//! The delivery of the change feed to webhook subscriptions: [`Deliverer::deliver_one`],
//! which each of a daemon's delivery workers calls in a loop, claims a due subscription,
//! sends its next batch — or the batch in flight again, as the same message — signed
//! with the Standard Webhooks scheme, and records the outcome: the position moves on, or
//! the next attempt is scheduled (exponential backoff, in the database, so a restart
//! resumes it), or after `delivery.max_attempts` the subscription is dead.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::Passerelle;
use crate::config::DeliveryConfig;
use crate::feed::{change_views, ChangeView};
use crate::{ServiceError, ServiceResult};
use passerelle_runtime::capabilities::netguard::GuardedResolver;
use passerelle_store::feed::ChangeFilter;
use passerelle_store::subscriptions::Subscription;

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
                if sub.patients {
                    // Patient data left the daemon: on the trail, which batch to whom,
                    // before the batch counts as delivered.
                    self.app
                        .audit(
                            "webhook.patients-delivered",
                            &sub.id,
                            serde_json::json!({"webhook_id": message_id, "changes": count}),
                        )
                        .await?;
                }
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
