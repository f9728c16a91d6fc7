//! Drift alerts: when a run ends in schema drift and its account pauses, an error-level
//! log event, a metric, and (if `alerts.webhook_url` is set) a JSON POST to a webhook,
//! retried with backoff in the background. The payload names the connector, version,
//! practice, account, run and the drift report: identifiers and shapes, never patient
//! data or secrets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::config::AlertsConfig;
use passerelle_model::run::DriftReport;
use passerelle_runtime::metrics::Metrics;

/// What a drift alert says (the webhook's JSON body).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriftAlert {
    /// `connector.drift`, or `connector.security` (a platform's answer carried a secret
    /// back: `drift.found` says where).
    pub event: String,
    pub connector: String,
    pub version: String,
    pub sha256: String,
    pub practice_id: String,
    pub account_id: String,
    pub run_id: i64,
    pub drift: DriftReport,
    /// The account is paused until a new version re-drives it or an operator resumes it.
    pub paused: bool,
    pub at: String,
}

/// Sends drift alerts.
pub struct Alerts {
    webhook: Option<(reqwest::Client, reqwest::Url)>,
    attempts: u32,
    metrics: Arc<Metrics>,
    deliveries: Mutex<JoinSet<()>>,
}

/// First delay between webhook attempts; doubles each time, capped at a minute.
const FIRST_RETRY: Duration = Duration::from_millis(500);

impl Alerts {
    pub fn new(config: &AlertsConfig, metrics: Arc<Metrics>) -> Result<Alerts> {
        let webhook = match &config.webhook_url {
            None => None,
            Some(url) => {
                let url = reqwest::Url::parse(url).context("alerts.webhook_url")?;
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .context("building the webhook client")?;
                Some((client, url))
            }
        };
        Ok(Alerts {
            webhook,
            attempts: config.webhook_attempts.unwrap_or(5).max(1),
            metrics,
            deliveries: Mutex::new(JoinSet::new()),
        })
    }

    /// Raises an alert: logged and counted now, delivered to the webhook in the
    /// background (needs a Tokio runtime).
    pub fn drift(&self, alert: DriftAlert) {
        if alert.event == "connector.security" {
            tracing::error!(
                connector = %alert.connector,
                version = %alert.version,
                practice = %alert.practice_id,
                account = %alert.account_id,
                run = alert.run_id,
                detail = %alert.drift.found,
                "security event: a platform's answer carried a secret back to the connector; account paused until `passerelle accounts resume {}`",
                alert.account_id
            );
        } else {
            tracing::error!(
                connector = %alert.connector,
                version = %alert.version,
                practice = %alert.practice_id,
                account = %alert.account_id,
                run = alert.run_id,
                endpoint = %alert.drift.endpoint,
                path = %alert.drift.path,
                expected = %alert.drift.expected,
                found = %alert.drift.found,
                "schema drift: account paused until a new connector version re-drives it (or `passerelle accounts resume {}`)",
                alert.account_id
            );
        }
        self.metrics.alert("raised");
        let Some((client, url)) = self.webhook.clone() else {
            return;
        };
        let attempts = self.attempts;
        let metrics = self.metrics.clone();
        let mut deliveries = self.deliveries.lock().expect("not poisoned");
        // Forget deliveries that are done.
        while deliveries.try_join_next().is_some() {}
        deliveries.spawn(async move {
            let mut delay = FIRST_RETRY;
            for attempt in 1..=attempts {
                match client.post(url.clone()).json(&alert).send().await {
                    Ok(r) if r.status().is_success() => {
                        metrics.alert("webhook-delivered");
                        return;
                    }
                    Ok(r) => tracing::warn!(
                        attempt,
                        status = r.status().as_u16(),
                        "drift webhook refused the alert"
                    ),
                    Err(e) => {
                        tracing::warn!(attempt, "drift webhook unreachable: {}", e.without_url())
                    }
                }
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
            metrics.alert("webhook-failed");
            tracing::error!(attempts, "drift webhook: alert not delivered");
        });
    }

    /// Waits up to `timeout` for alerts still being delivered (at shutdown).
    pub async fn flush(&self, timeout: Duration) {
        let mut pending = std::mem::take(&mut *self.deliveries.lock().expect("not poisoned"));
        let _ = tokio::time::timeout(timeout, async {
            while pending.join_next().await.is_some() {}
        })
        .await;
    }
}

/// A webhook URL for display: scheme and host only (the path often holds a credential).
pub fn redacted_webhook(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}/[redacted]",
            u.scheme(),
            u.host_str().unwrap_or("?")
        ),
        Err(_) => "[redacted]".into(),
    }
}
