//! The schema's migrations, embedded in the binary: one list of file names for both
//! backends (`migrations/{sqlite,postgres}/NNNN_name.sql`), read with `include_str!`
//! and handed to sqlx's migrator as a [`MigrationSource`]. The same version,
//! description and SQL (so the same checksum) as sqlx's `migrate!` macro gives, without
//! compiling that macro's copy of the drivers. A test checks the list against the
//! folders.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Backend;

macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        /// Every migration's file stem, in order.
        pub const FILES: &[&str] = &[$($file),*];
        const SQLITE: &[&str] = &[$(include_str!(concat!("../migrations/sqlite/", $file, ".sql"))),*];
        const POSTGRES: &[&str] = &[$(include_str!(concat!("../migrations/postgres/", $file, ".sql"))),*];
    };
}

embedded!(
    "0001_initial",
    "0002_practice_schedule",
    "0003_daemon",
    "0004_hot_swap",
    "0005_one_running_run",
    "0006_shared_queue",
    "0007_queued_manual",
    "0008_components",
    "0009_retry_after_bigint",
    "0010_pause_reason",
    "0011_audit",
    "0012_api_tokens",
    "0013_change_feed",
    "0014_subscriptions",
    "0015_practice_public",
    "0016_run_overview",
    "0017_store_meta",
    "0018_export_listing",
    "0019_duration_trigger",
    "0020_run_cassettes",
);

/// One backend's embedded migrations.
#[derive(Debug, Clone, Copy)]
pub struct Embedded(Backend);

impl Embedded {
    pub fn new(backend: Backend) -> Embedded {
        Embedded(backend)
    }

    /// `(version, description, sql)` of each, as `migrate!` reads a file name
    /// (`0003_daemon_leases.sql` → 3, `daemon leases`).
    pub fn migrations(self) -> Vec<Migration> {
        let sql = match self.0 {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        FILES
            .iter()
            .zip(sql)
            .map(|(file, sql)| {
                let (version, name) = file.split_once('_').expect("NNNN_name");
                Migration::new(
                    version.parse().expect("a numbered migration"),
                    Cow::Owned(name.replace('_', " ")),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect()
    }

    /// The migrator sqlx runs.
    pub async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }
}

type Resolved<'s> = Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>>;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> Resolved<'s> {
        Box::pin(async move { Ok(self.migrations()) })
    }
}
