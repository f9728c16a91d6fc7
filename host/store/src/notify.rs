//! Telling the other daemons on this database that something changed, at once:
//! PostgreSQL `NOTIFY` on one channel, a [`Change`] as the payload; every daemon
//! `LISTEN`s ([`Store::listener`]). Best effort: a notification that cannot be sent is
//! logged, and each daemon's periodic checks are the fallback. SQLite holds one daemon:
//! nothing to tell.

use super::{Backend, Store};

/// The channel every daemon listens on.
pub const CHANNEL: &str = "passerelle_changes";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Runs were queued (or queued again): claim them.
    Queued,
    /// A connector version was activated: re-drive its paused accounts.
    Activation,
    /// Practices or schedules changed: reload the plan.
    Practices,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Queued => "queued",
            Change::Activation => "activation",
            Change::Practices => "practices",
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        [Change::Queued, Change::Activation, Change::Practices]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

impl Store {
    /// Tells the other daemons (see the module doc).
    pub async fn notify(&self, change: Change) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.as_str())
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!("cannot notify the other daemons ({}): {e}", change.as_str());
        }
    }

    /// A connection listening for [`Change`]s, on PostgreSQL (None on SQLite). sqlx's
    /// listener reconnects by itself when the connection drops.
    pub async fn listener(&self) -> Result<Option<sqlx::postgres::PgListener>, sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(listener))
    }
}
