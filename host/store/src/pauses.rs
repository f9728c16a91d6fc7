//! Paused accounts: a run of the account ended `drift` (its scheduled runs are skipped,
//! not sent to a platform whose responses the connector no longer reads, until a run
//! succeeds — a new version re-drives it — or the operator resumes it), or ended as a
//! `security` event (a platform's answer carried a secret back: only the operator
//! resumes it).

use super::error::{DbContext, StoreResult};
use passerelle_model::pause::Pause;
use sqlx::Row;

use super::{now_text, Store};
use passerelle_model::run::PauseReason;

const COLUMNS: &str = "account_id, connector, run_id, version, sha256, drift, paused_at, reason";

impl Store {
    /// Lifts an account's pause; false if it was not paused.
    pub async fn resume_account(&self, account_id: &str) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        lift_pause(&mut conn, account_id).await
    }

    /// Paused accounts, of one connector or all, oldest pause first.
    pub async fn pauses(&self, connector: Option<&str>) -> StoreResult<Vec<Pause>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_pauses WHERE ($1 IS NULL OR connector = $1)
             ORDER BY paused_at, account_id"
        ))
        .bind(connector)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pause_from_row).collect()
    }

    /// The pause of one account, if it is paused.
    pub async fn pause(&self, account_id: &str) -> StoreResult<Option<Pause>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_pauses WHERE account_id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pause_from_row).transpose()
    }
}

/// What the end of a run does to its account's pause, written in the same transaction
/// as the run's end so that nobody sees a finished run and a stale pause.
#[derive(Debug, Clone, Copy)]
pub enum PauseEffect<'a> {
    /// Leaves the pause (or its absence) as it is.
    Keep,
    /// Pauses the account (or replaces its pause).
    Pause(&'a Pause),
    /// Lifts this account's pause, if it has one.
    Lift(&'a str),
}

/// A [`PauseEffect`] holding its values, to send with a transaction to another thread.
pub(crate) enum OwnedPauseEffect {
    Keep,
    Pause(Box<Pause>),
    Lift(String),
}

impl From<PauseEffect<'_>> for OwnedPauseEffect {
    fn from(effect: PauseEffect<'_>) -> Self {
        match effect {
            PauseEffect::Keep => OwnedPauseEffect::Keep,
            PauseEffect::Pause(p) => OwnedPauseEffect::Pause(Box::new(p.clone())),
            PauseEffect::Lift(account) => OwnedPauseEffect::Lift(account.to_owned()),
        }
    }
}

impl OwnedPauseEffect {
    pub(crate) fn as_effect(&self) -> PauseEffect<'_> {
        match self {
            OwnedPauseEffect::Keep => PauseEffect::Keep,
            OwnedPauseEffect::Pause(p) => PauseEffect::Pause(p),
            OwnedPauseEffect::Lift(account) => PauseEffect::Lift(account),
        }
    }
}

/// Applies a [`PauseEffect`] on a connection (inside the caller's transaction); true if a
/// pause was lifted.
pub(super) async fn apply(
    conn: &mut sqlx::AnyConnection,
    effect: PauseEffect<'_>,
) -> StoreResult<bool> {
    match effect {
        PauseEffect::Keep => Ok(false),
        PauseEffect::Pause(pause) => write_pause(conn, pause).await.map(|()| false),
        PauseEffect::Lift(account_id) => lift_pause(conn, account_id).await,
    }
}

async fn write_pause(conn: &mut sqlx::AnyConnection, pause: &Pause) -> StoreResult<()> {
    let drift = serde_json::to_string(&pause.drift).expect("serialisable");
    sqlx::query("DELETE FROM account_pauses WHERE account_id = $1")
        .bind(&pause.account_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO account_pauses ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&pause.account_id)
    .bind(&pause.connector)
    .bind(pause.run_id)
    .bind(&pause.version)
    .bind(&pause.sha256)
    .bind(drift)
    .bind(now_text())
    .bind(pause.reason.as_str())
    .execute(&mut *conn)
    .await
    .context("pausing the account")?;
    Ok(())
}

async fn lift_pause(conn: &mut sqlx::AnyConnection, account_id: &str) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM account_pauses WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await
        .context("resuming the account")?
        .rows_affected();
    Ok(n > 0)
}

fn pause_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Pause> {
    let drift: String = row.get("drift");
    let reason: String = row.get("reason");
    Ok(Pause {
        account_id: row.get("account_id"),
        reason: PauseReason::parse(&reason)?,
        connector: row.get("connector"),
        run_id: row.get("run_id"),
        version: row.get("version"),
        sha256: row.get("sha256"),
        drift: serde_json::from_str(&drift).context("corrupt drift report")?,
        paused_at: row.get("paused_at"),
    })
}
