//! The sync log (one row per run) and each account's sync state (its committed cursor).

use super::error::{is_unique_violation, DbContext, StoreError, StoreResult};
use sqlx::Row;

use super::pauses::{OwnedPauseEffect, PauseEffect};
use super::{literal, now_text, Store};
use passerelle_model::run::{
    ErrorKind, Mode, NewRun, Run, RunCounts, RunEnd, RunFilter, Status, Trigger,
};

pub(super) const RUN_COLUMNS: &str =
    "id, practice_id, account_id, connector, connector_version, connector_sha256,
    trigger, mode, status, started_at, finished_at, duration_ms, appointments_added,
    appointments_changed, appointments_deleted, appointments_tombstoned, slots_written,
    slots_removed, http_requests, bytes_received, checkpoints, error_kind, error_detail,
    cursor_before, cursor_after, message, attempt, retry_after_secs, drift, quarantined, owner";

impl Store {
    /// Opens a run in the sync log with status `running`, owned by this process;
    /// returns its id. The database refuses a second running run of an account
    /// ([`StartError::Busy`], which says whether that run's process is gone: the run
    /// recorder then ends it, [`Store::interrupt_orphan`], and starts again).
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<i64, StartError> {
        let now = now_text();
        let inserted = bind_run(
            sqlx::query(
                "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                    trigger, mode, status, started_at, queued_at, cursor_before, owner)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
            ),
            run,
        )
        .bind(Status::Running.as_str())
        .bind(&now)
        .bind(run.cursor_before)
        .bind(process_owner())
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => Ok(row.get::<i64, _>("id")),
            Err(e) if is_unique_violation(&e) => Err(self.busy(run.account_id).await),
            Err(source) => Err(StoreError::Database {
                context: "recording run start",
                source,
            }
            .into()),
        }
    }

    /// Ends a running run whose process is gone ([`StartError::Busy`] with `orphaned`,
    /// [`Store::orphaned_runs`]) as `cancelled`/`interrupted`: the run as recorded, or
    /// None if it ended meanwhile. The run recorder's to call.
    pub async fn interrupt_orphan(&self, run_id: i64, owner: &str) -> StoreResult<Option<Run>> {
        let closed = sqlx::query(&format!(
            "UPDATE runs SET status = $2, finished_at = $3, error_kind = $4, error_detail = $5
             WHERE id = $1 AND status = {}",
            literal(Status::Running.as_str())
        ))
        .bind(run_id)
        .bind(Status::Cancelled.as_str())
        .bind(now_text())
        .bind(ErrorKind::Interrupted.as_str())
        .bind(format!("interrupted: its process ({owner}) is gone"))
        .execute(&self.pool)
        .await
        .context("closing a run whose process is gone")?;
        if closed.rows_affected() == 0 {
            return Ok(None);
        }
        self.run(run_id).await
    }

    async fn busy(&self, account_id: &str) -> StartError {
        match self.running_run(account_id).await {
            Ok(Some(holder)) => holder.into_busy(account_id),
            // The running run ended between the refusal and this look: say so.
            Ok(None) => StartError::Store(StoreError::Conflict(
                "the account's previous run ended just now; try again".into(),
            )),
            Err(e) => StartError::Store(e),
        }
    }

    /// The account's running run, if any: id, owner and start.
    async fn running_run(&self, account_id: &str) -> StoreResult<Option<Holder>> {
        let row = sqlx::query(&format!(
            "SELECT id, owner, started_at, lease_until FROM runs WHERE account_id = $1 AND status = {}",
            literal(Status::Running.as_str())
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading the account's running run")?;
        Ok(row.map(|r| Holder {
            run_id: r.get("id"),
            owner: r.get("owner"),
            started_at: r.get("started_at"),
            lease_until: r.get("lease_until"),
        }))
    }

    /// Closes a run with its outcome and counts, and applies what that does to its
    /// account's pause in the same transaction: the run as recorded and whether a pause
    /// was lifted. None if another daemon closed it already (its lease ended): that
    /// record stands and nothing is written.
    pub async fn finish_run(
        &self,
        id: i64,
        end: &RunEnd,
        pause: PauseEffect<'_>,
    ) -> StoreResult<Option<(Run, bool)>> {
        // On SQLite, on the writer thread (see `commit_and_finish_run`).
        let store = self.clone();
        let (end, pause) = (end.clone(), OwnedPauseEffect::from(pause));
        self.on_writer_thread(async move {
            let mut tx = store.begin_write().await?;
            let ended = finish_run_in(&mut tx, id, &end, pause.as_effect()).await?;
            if ended.is_some() {
                tx.commit().await.context("recording run end")?;
            } else {
                tracing::warn!(
                    run = id,
                    "the run was closed by another daemon (its lease ended); its end here is not recorded"
                );
            }
            Ok(ended)
        })
        .await
    }

    /// Records a run that did not happen (a missed slot, a paused account): status
    /// `skipped` with the reason.
    pub async fn skip_run(
        &self,
        run: &NewRun<'_>,
        kind: ErrorKind,
        reason: &str,
    ) -> StoreResult<i64> {
        let now = now_text();
        let row = bind_run(
            sqlx::query(
                "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
                    trigger, mode, status, started_at, finished_at, duration_ms, error_kind, error_detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 0, $10, $11) RETURNING id",
            ),
            run,
        )
        .bind(Status::Skipped.as_str())
        .bind(&now)
        .bind(kind.as_str())
        .bind(reason)
        .fetch_one(&self.pool)
        .await
        .context("recording a skipped run")?;
        Ok(row.get::<i64, _>("id"))
    }

    /// Runs left `running` without a lease (started by `passerelle sync`, or by a
    /// version before leases) whose process is gone from this host: (run id, owner).
    pub async fn orphaned_runs(&self) -> StoreResult<Vec<(i64, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT id, owner FROM runs WHERE status = {} AND lease_until IS NULL",
            literal(Status::Running.as_str())
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading running runs")?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let owner: Option<String> = row.get("owner");
                owner_is_gone(owner.as_deref()).then(|| {
                    (
                        row.get::<i64, _>("id"),
                        owner.unwrap_or_else(|| "unknown".into()),
                    )
                })
            })
            .collect())
    }

    /// A value the daemon keeps across restarts.
    pub async fn daemon_state(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM daemon_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>("value")))
    }

    /// Moves a value the daemons keep forward only (an instant as stored text): a
    /// daemon that lags behind another cannot move it back.
    pub async fn advance_daemon_state(&self, key: &str, value: &str) -> StoreResult<()> {
        self.save_daemon_state(key, value, true).await
    }

    pub async fn set_daemon_state(&self, key: &str, value: &str) -> StoreResult<()> {
        self.save_daemon_state(key, value, false).await
    }

    async fn save_daemon_state(&self, key: &str, value: &str, forward: bool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO daemon_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
             WHERE $4 = 0 OR daemon_state.value < excluded.value",
        )
        .bind(key)
        .bind(value)
        .bind(now_text())
        .bind(i64::from(forward))
        .execute(&self.pool)
        .await
        .context("saving daemon state")?;
        Ok(())
    }

    pub async fn run(&self, id: i64) -> StoreResult<Option<Run>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The sync log, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE ($1 IS NULL OR practice_id = $1) AND ($2 IS NULL OR account_id = $2)
               AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR started_at >= $4)
               AND ($5 IS NULL OR connector = $5) AND ($6 IS NULL OR trigger = $6)
               AND ($7 IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8"
        ))
        .bind(filter.practice_id.as_deref())
        .bind(filter.account_id.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.since.map(time_text))
        .bind(filter.connector.as_deref())
        .bind(filter.trigger.map(|t| t.as_str()))
        .bind(filter.before)
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Sets an account's cursor outside a run: a replay bench starting where a recorded
    /// run started (the connector kit's, on its own scratch store).
    pub async fn seed_cursor(&self, account_id: &str, cursor: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sync_state (account_id, cursor, last_run_id, updated_at) VALUES ($1, $2, 0, $3)
             ON CONFLICT (account_id) DO UPDATE SET cursor = excluded.cursor,
                updated_at = excluded.updated_at",
        )
        .bind(account_id)
        .bind(cursor)
        .bind(super::now_text())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account's committed cursor, if any.
    pub async fn cursor(&self, account_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT cursor FROM sync_state WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>("cursor")))
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The account has a running run (the database allows one).
    #[error(
        "account `{account}` is already running: run {run_id}, started {started_at} by {owner}"
    )]
    Busy {
        account: String,
        run_id: i64,
        owner: String,
        started_at: String,
        /// The run's process is gone from this host: nobody will end it.
        orphaned: bool,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The running run of an account.
struct Holder {
    run_id: i64,
    owner: Option<String>,
    started_at: String,
    /// A daemon's run: its lease (renewed while the daemon lives).
    lease_until: Option<String>,
}

impl Holder {
    fn into_busy(self, account: &str) -> StartError {
        // A daemon's run is its daemon's until the lease ends (the daemons close those
        // themselves); a local run's, while its process lives on this host.
        let orphaned = self.lease_until.is_none() && owner_is_gone(self.owner.as_deref());
        StartError::Busy {
            account: account.to_string(),
            run_id: self.run_id,
            owner: self.owner.unwrap_or_else(|| "another process".into()),
            started_at: self.started_at,
            orphaned,
        }
    }
}

static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// This process as the owner of the runs it starts itself (`passerelle sync`):
/// `host/pid`. A daemon's runs are owned by its id.
pub fn process_owner() -> &'static str {
    OWNER.get_or_init(default_owner)
}

/// `host/pid`: also a daemon's id unless configured.
pub fn default_owner() -> String {
    format!(
        "{}/{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// Whether the process that owns a run is known to be gone: it ran on this host and
/// its pid no longer exists. Runs of other hosts are never judged from here.
fn owner_is_gone(owner: Option<&str>) -> bool {
    let Some((host, pid)) = owner.and_then(|o| o.rsplit_once('/')) else {
        // Recorded before runs had owners: from an earlier version, not running now.
        return true;
    };
    let this_host = gethostname::gethostname();
    if host != this_host.to_string_lossy() {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => !process_exists(pid),
        Err(_) => false,
    }
}

/// Whether a process with this pid exists on this host (where that cannot be told,
/// it is assumed to: a run is never taken from a live process).
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Binds a new run's first seven columns (practice, account, connector, version,
/// hash, trigger, mode) as `$1`..`$7`.
pub(super) fn bind_run<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    run: &NewRun<'q>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(run.practice_id)
        .bind(run.account_id)
        .bind(run.connector)
        .bind(run.connector_version)
        .bind(run.connector_sha256)
        .bind(run.trigger.as_str())
        .bind(run.mode.as_str())
}

/// An instant as stored (see [`now_text`]).
pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// [`Store::finish_run`] inside `tx` (not committed).
pub(super) async fn finish_run_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    end: &RunEnd,
    pause: PauseEffect<'_>,
) -> StoreResult<Option<(Run, bool)>> {
    let Some(run) = end_run_row(tx, id, end).await? else {
        return Ok(None);
    };
    let lifted = after_run_end(tx, pause).await?;
    Ok(Some((run, lifted)))
}

/// What ending `run` also writes, in its transaction: the pause effect (its duration is
/// counted by the end's own statement, [`super::durations`]); whether a pause was lifted.
pub(super) async fn after_run_end(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    pause: PauseEffect<'_>,
) -> StoreResult<bool> {
    super::pauses::apply(tx, pause).await
}

/// The run's row closed with `end` (inside `tx`): the run as recorded, None if it was
/// not queued or running any more (another daemon closed it).
pub(super) async fn end_run_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    end: &RunEnd,
) -> StoreResult<Option<Run>> {
    let c = &end.counts;
    let ended = sqlx::query(&format!(
            // Counts never go below what the checkpoints recorded (a run ended without
            // its work — cancelled, interrupted — keeps them), nor the cursor.
            "UPDATE runs SET status = $2, finished_at = $3, duration_ms = $4,
                appointments_added = CASE WHEN $5 > appointments_added THEN $5 ELSE appointments_added END,
                appointments_changed = CASE WHEN $6 > appointments_changed THEN $6 ELSE appointments_changed END,
                appointments_deleted = CASE WHEN $7 > appointments_deleted THEN $7 ELSE appointments_deleted END,
                appointments_tombstoned = CASE WHEN $8 > appointments_tombstoned THEN $8 ELSE appointments_tombstoned END,
                slots_written = CASE WHEN $9 > slots_written THEN $9 ELSE slots_written END,
                slots_removed = CASE WHEN $10 > slots_removed THEN $10 ELSE slots_removed END,
                http_requests = CASE WHEN $11 > http_requests THEN $11 ELSE http_requests END,
                bytes_received = CASE WHEN $12 > bytes_received THEN $12 ELSE bytes_received END,
                checkpoints = CASE WHEN $13 > checkpoints THEN $13 ELSE checkpoints END,
                quarantined = CASE WHEN $20 > quarantined THEN $20 ELSE quarantined END,
                error_kind = $14, error_detail = $15, cursor_after = COALESCE($16, cursor_after),
                message = $17, retry_after_secs = $18, drift = $19, duration_bucket = $21
             WHERE id = $1 AND status IN ({queued}, {running})
             RETURNING {RUN_COLUMNS}",
            // Literals, not parameters: see [`crate::literal`].
            queued = literal(Status::Queued.as_str()),
            running = literal(Status::Running.as_str()),
        ))
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
        .bind(end.error_kind.map(ErrorKind::as_str))
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
        // Counted in the duration rollup by the database's trigger as it is written.
        .bind(super::durations::counted_bucket(end))
        .fetch_optional(&mut **tx)
        .await
        .context("recording run end")?;
    ended.as_ref().map(run_from_row).transpose()
}

pub(super) fn run_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Run> {
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
        error_kind: row
            .get::<Option<String>, _>("error_kind")
            .as_deref()
            .map(ErrorKind::parse)
            .transpose()?,
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
        owner: row.get("owner"),
    })
}
