//! Backups of the embedded database: an online, consistent copy (`VACUUM INTO`, while
//! daemons read and write) — installed components included, as the database keeps them
//! by content — and the check of one before a restore. A backup never holds the
//! secrets key: secrets stay sealed in it.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::{StoreError, StoreResult};
use crate::{Backend, Store};

impl Store {
    /// Writes a consistent copy of the database to `path` (which must not exist).
    pub async fn backup_into(&self, path: &Path) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Invalid(
                "a PostgreSQL database is backed up with pg_dump (docs/operations.md, \"Backup and restore\"); `passerelle backup` copies the embedded SQLite database".into(),
            ));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("{}: not a UTF-8 path", path.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(|source| StoreError::Database {
                context: "copying the database (VACUUM INTO)",
                source,
            })?;
        Ok(())
    }
}

/// How much a database holds: what a backup and a restore report, to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub practices: i64,
    pub accounts: i64,
    pub appointments: i64,
    pub slots: i64,
    pub runs: i64,
    pub components: i64,
    pub audit_entries: i64,
}

/// One row of counts, the same on a pool and on a backup's connection.
const TOTALS: &str = "SELECT (SELECT count(*) FROM practices) AS practices,
        (SELECT count(*) FROM accounts) AS accounts,
        (SELECT count(*) FROM appointments) AS appointments,
        (SELECT count(*) FROM slots) AS slots,
        (SELECT count(*) FROM runs) AS runs,
        (SELECT count(*) FROM components) AS components,
        (SELECT count(*) FROM audit_log) AS audit_entries";

fn totals_from<R: Row>(row: &R) -> Totals
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Totals {
        practices: row.get("practices"),
        accounts: row.get("accounts"),
        appointments: row.get("appointments"),
        slots: row.get("slots"),
        runs: row.get("runs"),
        components: row.get("components"),
        audit_entries: row.get("audit_entries"),
    }
}

impl Store {
    /// The rows of each kind the database holds.
    pub async fn totals(&self) -> StoreResult<Totals> {
        let row = sqlx::query(TOTALS)
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting the database's rows"))?;
        Ok(totals_from(&row))
    }
}

/// The rows of each kind the backup at `path` holds.
pub async fn totals_of(path: &Path) -> StoreResult<Totals> {
    let mut conn = connect(path).await?;
    let row = sqlx::query(TOTALS)
        .fetch_one(&mut conn)
        .await
        .map_err(db("counting the backup's rows"))?;
    let totals = totals_from(&row);
    conn.close().await.map_err(db("closing the backup"))?;
    Ok(totals)
}

async fn connect(path: &Path) -> StoreResult<SqliteConnection> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|source| StoreError::Database {
            context: "opening the backup",
            source,
        })
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// Checks the copy at `path` before it becomes a data directory's database: SQLite's
/// integrity check, and that it is passerelle's (its migrations table and the
/// components it carries — installed components are kept in the database by content,
/// so a backup restores them without their files).
pub async fn check_copy(path: &Path) -> StoreResult<()> {
    let mut conn = connect(path).await?;
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(db("checking the backup"))?
        .get(0);
    if check != "ok" {
        return Err(StoreError::Corrupt {
            what: "backup",
            detail: format!("SQLite's integrity check: {check}"),
        });
    }
    let ours = sqlx::query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_sqlx_migrations', 'components', 'accounts')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(db("reading the backup"))?
    .get::<i64, _>(0);
    conn.close().await.map_err(db("closing the backup"))?;
    if ours != 3 {
        return Err(StoreError::Invalid(
            "not a passerelle database (made by `passerelle backup`?)".into(),
        ));
    }
    Ok(())
}
