//! The sync log (one row per run) and each account's sync state (its committed cursor).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{now_text, Store};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl $name {
            /// Parses the text form; the error lists the valid values.
            pub fn parse(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => anyhow::bail!(concat!("unknown ", stringify!($name), " `{}` (one of: ", $($text, " ",)+ ")"), s),
                }
            }
        }
    };
}

text_enum!(
    /// What started a run.
    Trigger { Schedule = "schedule", Manual = "manual", CatchUp = "catch-up", Redrive = "redrive" }
);
text_enum!(
    /// Incremental (from the cursor) or full (the whole window, with tombstoning).
    Mode { Incremental = "incremental", Full = "full" }
);
text_enum!(
    /// Where a run is or how it ended.
    Status {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Drift = "drift",
        Skipped = "skipped",
        Cancelled = "cancelled",
    }
);

/// One row of the sync log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub id: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub connector_version: String,
    pub connector_sha256: String,
    pub trigger: Trigger,
    pub mode: Mode,
    pub status: Status,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub counts: RunCounts,
    pub error_kind: Option<String>,
    pub error_detail: Option<String>,
    pub cursor_before: Option<String>,
    pub cursor_after: Option<String>,
    /// The connector's PII-free summary note.
    pub message: Option<String>,
    /// 1 for a first attempt; retries of a transient failure count up.
    pub attempt: i64,
    /// The platform's Retry-After, when it answered "slow down".
    pub retry_after_secs: Option<i64>,
    /// The connector's report, when the run ended `drift`.
    #[serde(default)]
    pub drift: Option<DriftReport>,
}

/// Where a platform's response stopped matching what the connector expects. PII-free:
/// the connector names kinds, never values, and the host scrubs it like any error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DriftReport {
    /// Method and path of the endpoint (`GET /booking/{centre}.json`).
    pub endpoint: String,
    /// JSON path of the offending item.
    pub path: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for DriftReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: at {} expected {}, found {}",
            self.endpoint, self.path, self.expected, self.found
        )
    }
}

/// What a run did. Accumulated by the runner, written when the run ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunCounts {
    pub appointments_added: i64,
    pub appointments_changed: i64,
    pub appointments_deleted: i64,
    pub appointments_tombstoned: i64,
    pub slots_written: i64,
    pub slots_removed: i64,
    pub http_requests: i64,
    pub bytes_received: i64,
    pub checkpoints: i64,
    /// Items set aside under the `quarantine` drift policy.
    #[serde(default)]
    pub quarantined: i64,
}

/// The identity of a run being started.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub practice_id: &'a str,
    pub account_id: &'a str,
    pub connector: &'a str,
    pub connector_version: &'a str,
    pub connector_sha256: &'a str,
    pub trigger: Trigger,
    pub mode: Mode,
    pub cursor_before: Option<&'a str>,
}

/// How a run ended. `error_detail` must already be free of patient data.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: Status,
    pub counts: RunCounts,
    pub error_kind: Option<String>,
    pub error_detail: Option<String>,
    pub cursor_after: Option<String>,
    pub message: Option<String>,
    pub duration_ms: i64,
    /// The platform's Retry-After (rate-limited runs).
    pub retry_after_secs: Option<i64>,
    /// The drift report (runs that end `drift`).
    pub drift: Option<DriftReport>,
}

impl RunEnd {
    /// A run that ended before doing anything, for `reason`.
    pub fn without_work(status: Status, error_kind: &str, reason: String) -> RunEnd {
        RunEnd {
            status,
            counts: RunCounts::default(),
            error_kind: Some(error_kind.into()),
            error_detail: Some(reason),
            cursor_after: None,
            message: None,
            duration_ms: 0,
            retry_after_secs: None,
            drift: None,
        }
    }
}

/// Filters for [`Store::list_runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub practice_id: Option<String>,
    pub account_id: Option<String>,
    pub status: Option<Status>,
    /// Runs started (or queued) at or after this instant.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub limit: Option<i64>,
}

const RUN_COLUMNS: &str =
    "id, practice_id, account_id, connector, connector_version, connector_sha256,
    trigger, mode, status, started_at, finished_at, duration_ms, appointments_added,
    appointments_changed, appointments_deleted, appointments_tombstoned, slots_written,
    slots_removed, http_requests, bytes_received, checkpoints, error_kind, error_detail,
    cursor_before, cursor_after, message, attempt, retry_after_secs, drift, quarantined";

impl Store {
    /// Opens a run in the sync log with status `running`; returns its id.
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                trigger, mode, status, started_at, cursor_before)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(run.practice_id)
        .bind(run.account_id)
        .bind(run.connector)
        .bind(run.connector_version)
        .bind(run.connector_sha256)
        .bind(run.trigger.as_str())
        .bind(run.mode.as_str())
        .bind(Status::Running.as_str())
        .bind(now_text())
        .bind(run.cursor_before)
        .fetch_one(&self.pool)
        .await
        .context("recording run start")?;
        Ok(row.get::<i64, _>("id"))
    }

    /// Closes a run with its outcome and counts.
    pub async fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        let c = &end.counts;
        sqlx::query(
            "UPDATE runs SET status = $2, finished_at = $3, duration_ms = $4,
                appointments_added = $5, appointments_changed = $6, appointments_deleted = $7,
                appointments_tombstoned = $8, slots_written = $9, slots_removed = $10,
                http_requests = $11, bytes_received = $12, checkpoints = $13,
                error_kind = $14, error_detail = $15, cursor_after = $16, message = $17,
                retry_after_secs = $18, drift = $19, quarantined = $20
             WHERE id = $1",
        )
        .bind(id)
        .bind(end.status.as_str())
        .bind(now_text())
        .bind(end.duration_ms)
        .bind(c.appointments_added)
        .bind(c.appointments_changed)
        .bind(c.appointments_deleted)
        .bind(c.appointments_tombstoned)
        .bind(c.slots_written)
        .bind(c.slots_removed)
        .bind(c.http_requests)
        .bind(c.bytes_received)
        .bind(c.checkpoints)
        .bind(end.error_kind.as_deref())
        .bind(end.error_detail.as_deref())
        .bind(end.cursor_after.as_deref())
        .bind(end.message.as_deref())
        .bind(end.retry_after_secs)
        .bind(
            end.drift
                .as_ref()
                .map(|d| serde_json::to_string(d).expect("serialisable")),
        )
        .bind(c.quarantined)
        .execute(&self.pool)
        .await
        .context("recording run end")?;
        Ok(())
    }

    /// Records a run the daemon has queued (status `queued`); returns its id, which the
    /// run keeps when it starts.
    pub async fn queue_run(&self, run: &NewRun<'_>, attempt: u32) -> Result<i64> {
        let ids = self.queue_runs(std::slice::from_ref(run), attempt).await?;
        Ok(ids[0])
    }

    /// [`Self::queue_run`] for many runs in one transaction (a slot shared by many
    /// practices); their ids, in order.
    pub async fn queue_runs(&self, runs: &[NewRun<'_>], attempt: u32) -> Result<Vec<i64>> {
        let now = now_text();
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(runs.len());
        for run in runs {
            let row = sqlx::query(
                "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                    trigger, mode, status, started_at, queued_at, cursor_before, attempt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, NULL, $10) RETURNING id",
            )
            .bind(run.practice_id)
            .bind(run.account_id)
            .bind(run.connector)
            .bind(run.connector_version)
            .bind(run.connector_sha256)
            .bind(run.trigger.as_str())
            .bind(run.mode.as_str())
            .bind(Status::Queued.as_str())
            .bind(&now)
            .bind(i64::from(attempt))
            .fetch_one(&mut *tx)
            .await
            .context("recording queued runs")?;
            ids.push(row.get::<i64, _>("id"));
        }
        tx.commit().await.context("recording queued runs")?;
        Ok(ids)
    }

    /// Starts a queued run: `running`, with the version it runs on (the active one now,
    /// which may differ from the one active when it was queued) and its final trigger
    /// and mode (a queued run can be lifted to manual or full by a later request).
    pub async fn begin_queued_run(&self, id: i64, run: &NewRun<'_>) -> Result<()> {
        let res = sqlx::query(
            "UPDATE runs SET status = $2, started_at = $3, connector_version = $4,
                connector_sha256 = $5, trigger = $6, mode = $7, cursor_before = $8
             WHERE id = $1 AND status = $9",
        )
        .bind(id)
        .bind(Status::Running.as_str())
        .bind(now_text())
        .bind(run.connector_version)
        .bind(run.connector_sha256)
        .bind(run.trigger.as_str())
        .bind(run.mode.as_str())
        .bind(run.cursor_before)
        .bind(Status::Queued.as_str())
        .execute(&self.pool)
        .await
        .context("recording run start")?;
        if res.rows_affected() != 1 {
            anyhow::bail!("run {id} is not queued any more");
        }
        Ok(())
    }

    /// Records a run that did not happen (a missed slot, a paused account): status
    /// `skipped` with the reason.
    pub async fn skip_run(&self, run: &NewRun<'_>, kind: &str, reason: &str) -> Result<i64> {
        let id = self.start_run(run).await?;
        self.finish_run(
            id,
            &RunEnd::without_work(Status::Skipped, kind, reason.to_string()),
        )
        .await?;
        Ok(id)
    }

    /// Marks every run still `queued` or `running` as `cancelled`: after a crash or a
    /// kill, at the daemon's next start. Returns how many there were.
    pub async fn cancel_unfinished_runs(&self, reason: &str) -> Result<u64> {
        let res = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2, error_kind = 'interrupted',
                error_detail = $3
             WHERE status IN ($4, $5)",
        )
        .bind(Status::Cancelled.as_str())
        .bind(now_text())
        .bind(reason)
        .bind(Status::Queued.as_str())
        .bind(Status::Running.as_str())
        .execute(&self.pool)
        .await
        .context("closing unfinished runs")?;
        Ok(res.rows_affected())
    }

    /// A value the daemon keeps across restarts.
    pub async fn daemon_state(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM daemon_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>("value")))
    }

    pub async fn set_daemon_state(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO daemon_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now_text())
        .execute(&self.pool)
        .await
        .context("saving daemon state")?;
        Ok(())
    }

    pub async fn run(&self, id: i64) -> Result<Option<Run>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The sync log, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE ($1 IS NULL OR practice_id = $1) AND ($2 IS NULL OR account_id = $2)
               AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR started_at >= $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(filter.practice_id.as_deref())
        .bind(filter.account_id.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.since.map(time_text))
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The account's committed cursor, if any.
    pub async fn cursor(&self, account_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT cursor FROM sync_state WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>("cursor")))
    }
}

/// An instant as stored (see [`now_text`]).
pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn run_from_row(row: &sqlx::any::AnyRow) -> Result<Run> {
    Ok(Run {
        id: row.get("id"),
        practice_id: row.get("practice_id"),
        account_id: row.get("account_id"),
        connector: row.get("connector"),
        connector_version: row.get("connector_version"),
        connector_sha256: row.get("connector_sha256"),
        trigger: Trigger::parse(&row.get::<String, _>("trigger"))?,
        mode: Mode::parse(&row.get::<String, _>("mode"))?,
        status: Status::parse(&row.get::<String, _>("status"))?,
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        duration_ms: row.get("duration_ms"),
        counts: RunCounts {
            appointments_added: row.get("appointments_added"),
            appointments_changed: row.get("appointments_changed"),
            appointments_deleted: row.get("appointments_deleted"),
            appointments_tombstoned: row.get("appointments_tombstoned"),
            slots_written: row.get("slots_written"),
            slots_removed: row.get("slots_removed"),
            http_requests: row.get("http_requests"),
            bytes_received: row.get("bytes_received"),
            checkpoints: row.get("checkpoints"),
            quarantined: row.get("quarantined"),
        },
        error_kind: row.get("error_kind"),
        error_detail: row.get("error_detail"),
        cursor_before: row.get("cursor_before"),
        cursor_after: row.get("cursor_after"),
        message: row.get("message"),
        attempt: row.get("attempt"),
        retry_after_secs: row.get("retry_after_secs"),
        drift: row
            .get::<Option<String>, _>("drift")
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .context("corrupt drift report")?,
    })
}
