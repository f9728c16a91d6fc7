//! Aggregates over the sync log and the practices for the operator's overview: the last
//! day's runs counted by platform and status and per quarter-hour (grouped by the
//! database from an index), the quarantine's size; a searchable page of practices and
//! each account's last run. The fortnight's durations are in [`super::durations`].

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::error::StoreResult;
use super::practices::Practice;
use super::runs::{run_from_row, time_text, RUN_COLUMNS};
use super::Store;
use passerelle_model::run::{Run, Status};

/// Runs of one platform that ended (or stand) in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub connector: String,
    pub status: Status,
    pub runs: i64,
}

/// Runs started in one quarter-hour (UTC) with one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarterCount {
    /// `YYYY-MM-DDTHH` of the start.
    pub hour: String,
    /// 0 to 3: which quarter of the hour.
    pub quarter: i64,
    pub status: Status,
    pub runs: i64,
}

fn status_of(text: &str) -> StoreResult<Status> {
    Status::parse(text).map_err(|e| super::error::StoreError::Invalid(e.to_string()))
}

/// A `LIKE` pattern matching `text` anywhere, case folded, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Runs started at or after `since`, counted by connector and status.
    pub async fn run_counts_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<StatusCount>> {
        let rows = sqlx::query(
            "SELECT connector, status, COUNT(*) AS n FROM runs WHERE started_at >= $1
             GROUP BY connector, status ORDER BY connector, status",
        )
        .bind(time_text(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusCount {
                    connector: r.get("connector"),
                    status: status_of(&r.get::<String, _>("status"))?,
                    runs: r.get("n"),
                })
            })
            .collect()
    }

    /// Runs started at or after `since`, counted per quarter-hour and status.
    pub async fn runs_per_quarter(&self, since: DateTime<Utc>) -> StoreResult<Vec<QuarterCount>> {
        let rows = sqlx::query(
            "SELECT substr(started_at, 1, 13) AS hour,
                    CAST(CAST(substr(started_at, 15, 2) AS INTEGER) / 15 AS BIGINT) AS quarter,
                    status, COUNT(*) AS n
             FROM runs WHERE started_at >= $1
             GROUP BY substr(started_at, 1, 13), CAST(substr(started_at, 15, 2) AS INTEGER) / 15, status",
        )
        .bind(time_text(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QuarterCount {
                    hour: r.get("hour"),
                    quarter: r.get("quarter"),
                    status: status_of(&r.get::<String, _>("status"))?,
                    runs: r.get("n"),
                })
            })
            .collect()
    }

    /// How many items are set aside in quarantine.
    pub async fn quarantine_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM quarantined_items")
            .fetch_one(&self.pool)
            .await?
            .get("n"))
    }

    /// Practices whose id or name contains `search` (case folded), by id, after
    /// `after`; and how many match in all.
    pub async fn practices_page(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<(Vec<Practice>, i64)> {
        let pattern = search.map(contains_pattern);
        let rows = sqlx::query(
            "SELECT id, name, timezone, schedule, public_info FROM practices
             WHERE ($1 IS NULL OR LOWER(id) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\')
               AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3",
        )
        .bind(pattern.as_deref())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM practices
             WHERE ($1 IS NULL OR LOWER(id) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\')",
        )
        .bind(pattern.as_deref())
        .fetch_one(&self.pool)
        .await?
        .get("n");
        Ok((
            rows.iter()
                .map(super::practices::practice_from_row)
                .collect(),
            total,
        ))
    }

    /// The latest run of each of a practice's accounts.
    pub async fn last_runs(&self, practice_id: &str) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id IN
               (SELECT MAX(id) FROM runs WHERE practice_id = $1 GROUP BY account_id)"
        ))
        .bind(practice_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_matches_its_wildcards_literally() {
        assert_eq!(contains_pattern("Dr_50%"), "%dr\\_50\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }
}
