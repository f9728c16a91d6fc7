//! What a store operation fails with ([`StoreError`]): a row that does not exist, a key
//! that does, a stored value that cannot be read back, or the database itself. The
//! service turns the first two into its own "not found" and "conflict"; the database
//! failing is the host's problem, shown without its details.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A row with that key exists already.
    #[error("{0}")]
    Conflict(String),
    /// The store was asked for something it cannot hold (a bad database URL).
    #[error("{0}")]
    Invalid(String),
    /// A commit would take an account past its quota, or the disk below its guard.
    #[error(transparent)]
    Quota(#[from] passerelle_model::QuotaExceeded),
    /// A stored value cannot be read back.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The database failed while doing `context`.
    #[error("{context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database cannot be reached.
    #[error("cannot connect to `{url}`: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("applying database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// What store operations return.
pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        StoreError::Database {
            context: "database",
            source,
        }
    }
}

impl From<passerelle_model::run::UnknownValue> for StoreError {
    fn from(e: passerelle_model::run::UnknownValue) -> Self {
        StoreError::Corrupt {
            what: e.what,
            detail: e.to_string(),
        }
    }
}

/// Names what the store was doing when the database (or a stored value) failed.
pub(crate) trait DbContext<T> {
    fn context(self, what: &'static str) -> StoreResult<T>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn context(self, what: &'static str) -> StoreResult<T> {
        self.map_err(|source| StoreError::Database {
            context: what,
            source,
        })
    }
}

impl<T> DbContext<T> for Result<T, serde_json::Error> {
    fn context(self, what: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Corrupt {
            what,
            detail: e.to_string(),
        })
    }
}

/// Whether the database refused a write for a unique key (a duplicate, or a second
/// running run of an account).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
