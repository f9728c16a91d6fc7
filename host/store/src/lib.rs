//! The database: SQLite by default (a file in the data dir), PostgreSQL by URL.
//!
//! One [`Store`] over sqlx's `Any` driver, so every query is written once; the two
//! backends differ only in their embedded [`migrations`] (`migrations/{sqlite,postgres}`).
//! Submodules own one table family each: [`practices`] (practices, accounts, secrets),
//! [`connectors`] (installed versions), [`runs`] (the sync log and sync state) and
//! [`records`] (appointments and slots, committed per checkpoint; [`pages`] reads them
//! back a page at a time; [`feed`] numbers their changes), [`queue`] (the run queue several daemons share) and
//! [`daemons`] (the live ones), [`subscriptions`] (where the feed is delivered). Secrets are sealed at
//! rest with the store's [`sealed::Keyring`].

pub mod audit;
pub mod backup;
pub mod cassettes;
pub mod connectors;
pub mod daemons;
pub mod durations;
pub mod error;
pub mod export_stats;
pub mod feed;
pub mod migrations;
pub mod notify;
pub mod overview;
pub mod pages;
pub mod pauses;
pub mod practices;
pub mod private_file;
pub mod quarantine;
pub mod queue;
pub mod quotas;
pub mod records;
pub mod runs;
pub mod sealed;
pub mod secrets;
pub mod subscriptions;
pub mod tokens;
mod writer_thread;

use std::path::Path;
use std::str::FromStr;

use self::error::{DbContext, StoreError, StoreResult};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions and the claim go: on SQLite a pool of its own with one
    /// connection (there is one writer at a time anyway), so writers queue in the pool
    /// instead of polling SQLite's busy handler, and that connection's page cache stays
    /// warm — each of the general pool's connections must re-read the pages another
    /// connection wrote since its last use. On PostgreSQL, the general pool.
    writer: AnyPool,
    /// On SQLite, where multi-statement write transactions run
    /// ([`Store::on_writer_thread`]); none on PostgreSQL.
    writer_thread: Option<writer_thread::WriterThread>,
    backend: Backend,
    /// The URL it was opened with (for a `LISTEN` connection); never shown unredacted.
    url: String,
    /// Seals and opens account secrets; none until [`Store::with_keyring`] (secrets can
    /// then be neither written nor read).
    keyring: Option<std::sync::Arc<sealed::Keyring>>,
    /// What its commits enforce ([`quotas`]).
    quotas: passerelle_model::Quotas,
    /// The SQLite database's file (for the disk guard); none on PostgreSQL.
    sqlite_file: Option<std::path::PathBuf>,
}

/// Current time as stored: RFC 3339, UTC, milliseconds.
/// `$first, $first+1, …` for `n` parameters (an `IN (…)` list).
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fixed value of the model (a run's status or trigger) as an SQL literal.
///
/// Statements over `runs` name statuses and triggers as literals, never as parameters:
/// the table's partial indexes (`… WHERE status = 'running'`) make SQLite compare a
/// parameter found in the same place with the index's value while planning, so the
/// statement is prepared again each time that parameter is bound (its plan depends on
/// the value). The daemon's profile showed that re-preparing as a fifth of its CPU per
/// run. Only `&'static str` of the model's enumerations are taken: never outside text.
pub(crate) fn literal(text: &'static str) -> String {
    debug_assert!(!text.contains('\''));
    format!("'{text}'")
}

/// One row's `n` parameters of a multi-row statement, from the `first`-th, as the
/// backend reads them fastest: `$first, …` on PostgreSQL, anonymous `?, …` on SQLite.
/// SQLite finds a named parameter (`$7`) by walking the statement's list of names, and
/// sqlx asks for the name of every parameter at every execution: quadratic in a wide
/// statement's parameters (4.6 % of the daemon's CPU over a night). An anonymous `?`
/// takes the next number, so on SQLite the statement must use its parameters once
/// each, in binding order, with no named one after them.
pub(crate) fn row_params(conn: &sqlx::AnyConnection, first: usize, n: usize) -> String {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        vec!["?"; n].join(", ")
    } else {
        placeholders(first, n)
    }
}

pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// The default embedded database: `passerelle.db` in `data_dir`, created on first
    /// use with owner-only permissions.
    pub async fn open_in_data_dir(data_dir: &Path) -> StoreResult<Store> {
        let path = data_dir.join("passerelle.db");
        let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display())).await?;
        restrict_permissions(&path);
        Ok(store)
    }

    /// Opens `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            )));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Invalid(format!("invalid database URL `{}`: {e}", redact_url(url)))
            })?
            .log_statements(tracing::log::LevelFilter::Trace);
        // No ping before each use (it doubled every statement's round trips): a
        // connection that died with its server fails its statement, and a run that meets
        // it ends with a retryable storage error.
        let sqlite_pool = |connections: u32| {
            // One writer at a time; WAL lets readers proceed meanwhile.
            AnyPoolOptions::new()
                .test_before_acquire(false)
                .max_connections(connections)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                            .await?;
                        Ok(())
                    })
                })
        };
        let pool_options = match backend {
            Backend::Sqlite => sqlite_pool(4),
            Backend::Postgres => AnyPoolOptions::new()
                .test_before_acquire(false)
                .max_connections(16),
        };
        let pool = pool_options
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        let writer = match backend {
            Backend::Sqlite => sqlite_pool(1).connect_lazy_with(options),
            Backend::Postgres => pool.clone(),
        };
        // `sqlite://PATH?options`: the file the disk guard watches.
        let sqlite_file = (backend == Backend::Sqlite)
            .then(|| {
                let rest = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))?;
                let path = rest.split('?').next().unwrap_or(rest);
                (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
            })
            .flatten();
        let store = Store {
            pool,
            writer,
            writer_thread: (backend == Backend::Sqlite).then(writer_thread::WriterThread::default),
            backend,
            url: url.to_string(),
            keyring: None,
            quotas: passerelle_model::Quotas::default(),
            sqlite_file,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A transaction that writes, from the writer pool. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`), so a writer outside this process (a CLI
    /// command) waits on the busy timeout instead of failing when a reading
    /// transaction tries to become a writing one. Never nest one in another: the second
    /// would wait for the first's connection.
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        };
        tx.context("starting a write transaction")
    }

    /// Runs `work` — a write transaction of several statements — on SQLite's writer
    /// thread (see [`writer_thread`]), so the write lock it takes is not held while its
    /// caller's thread is busy elsewhere; on PostgreSQL, here. `work` runs to its end
    /// even if the caller stops waiting.
    pub(crate) async fn on_writer_thread<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
    ) -> StoreResult<T> {
        match &self.writer_thread {
            Some(thread) => thread.run(work).await,
            None => work.await,
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrator = migrations::Embedded::new(self.backend).migrator().await?;
        migrator.run(&self.pool).await.map_err(StoreError::from)
    }

    /// The SQLite database file, if that is the backend.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self
            .url
            .strip_prefix("sqlite://")
            .or_else(|| self.url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// The pool of write transactions and the claim (see [`Store::begin_write`]).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }
}

/// A database URL with any password replaced, fit for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [
            path.to_path_buf(),
            path.with_extension("db-wal"),
            path.with_extension("db-shm"),
        ] {
            if p.exists() {
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}
