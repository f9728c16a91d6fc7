//! The open-data export's figures by day (centres with availability, centres, bookable
//! slots): the series `stats_by_date.json` publishes, one row per day, the day's last
//! export winning; and the last export's report (what it wrote, what it left out), which
//! the console shows whichever daemon wrote it.

use super::error::{DbContext, StoreResult};
use super::Store;
use sqlx::Row;

/// One day's figures, as the day's last export counted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDay {
    /// `YYYY-MM-DD` (Paris).
    pub day: String,
    pub centres_available: i64,
    pub centres: i64,
    pub appointments: i64,
}

impl Store {
    /// Records `figures` as its day's (replacing an earlier export's of the same day).
    pub async fn record_export_day(&self, figures: &ExportDay) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO export_stats_by_date (day, centres_available, centres, appointments)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (day) DO UPDATE SET centres_available = excluded.centres_available,
                centres = excluded.centres, appointments = excluded.appointments",
        )
        .bind(&figures.day)
        .bind(figures.centres_available)
        .bind(figures.centres)
        .bind(figures.appointments)
        .execute(&self.pool)
        .await
        .context("recording the export's figures of the day")?;
        Ok(())
    }

    /// Every recorded day, oldest first.
    pub async fn export_days(&self) -> StoreResult<Vec<ExportDay>> {
        let rows = sqlx::query(
            "SELECT day, centres_available, centres, appointments
             FROM export_stats_by_date ORDER BY day",
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the export's figures by day")?;
        Ok(rows
            .iter()
            .map(|r| ExportDay {
                day: r.get("day"),
                centres_available: r.get("centres_available"),
                centres: r.get("centres"),
                appointments: r.get("appointments"),
            })
            .collect())
    }

    /// Keeps `report` (JSON) as the last export's.
    pub async fn set_last_export(&self, report: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ('last_export', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(report)
        .execute(&self.pool)
        .await
        .context("keeping the export's report")?;
        Ok(())
    }

    /// The last export's report (JSON), if any export ran.
    pub async fn last_export(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'last_export'")
            .fetch_optional(&self.pool)
            .await
            .context("reading the export's report")
    }
}
