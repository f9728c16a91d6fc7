//! Claiming: one statement that takes the next run this daemon may start, starts it (the
//! version it runs on, the cursor it starts from) and reads what it needs (its account,
//! its secrets' names, whether it is paused).

use sqlx::Row;

use super::decode;
use crate::error::{is_unique_violation, StoreResult};
use crate::{literal, now_text, placeholders, Backend, Store};
use passerelle_model::run::{Mode, Status, Trigger};

/// A run a daemon has claimed (status `running`, owned by it), with what its run needs
/// to start, read by the claiming statement itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub run_id: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub trigger: Trigger,
    pub mode: Mode,
    pub attempt: u32,
    /// Its account as claimed (None: deleted meanwhile).
    pub account: Option<passerelle_model::practice::Account>,
    /// The connector version it runs on, chosen and recorded by the claim as
    /// [`Store::connector_for`] chooses (the canary's for a practice in its set, else
    /// the active one; the version it was queued with if none is installed any more).
    pub connector_version: String,
    pub connector_sha256: String,
    /// The cursor it starts from (recorded as `cursor_before`; None for a full run).
    pub cursor: Option<String>,
    /// Whether the account had a pause (drift, security event) when claimed: only a
    /// run of a paused account has one to lift.
    pub paused: bool,
    /// The account's stored slots (external ids), read by the claim for the run's last
    /// commit ([`passerelle_model::records::Scope::stored_slots`]).
    pub stored_slots: std::collections::HashSet<String>,
}

impl Store {
    /// Claims the next run this daemon may start: manual runs first, then the oldest;
    /// not one still in its backoff, of a connector in `full` (at this daemon's cap), or
    /// of an account running elsewhere. The run becomes `running`, owned by `owner`
    /// until `lease_until` unless renewed.
    pub async fn claim_run(
        &self,
        owner: &str,
        lease_until: &str,
        full: &[String],
    ) -> StoreResult<Option<Claimed>> {
        match self.claim_one(owner, lease_until, full).await {
            Ok(c) => Ok(c),
            // A local `passerelle sync` started the account meanwhile: not claimable now,
            // looked at again on the next change.
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(source) => Err(crate::error::StoreError::Database {
                context: "claiming a queued run",
                source,
            }),
        }
    }

    /// One statement: the oldest claimable manual run, else the oldest claimable run.
    async fn claim_one(
        &self,
        owner: &str,
        lease_until: &str,
        full: &[String],
    ) -> Result<Option<Claimed>, sqlx::Error> {
        let now = now_text();
        let sql = self.claim_statement(full.len());
        let mut query = sqlx::query(&sql).bind(owner).bind(lease_until).bind(&now);
        for c in full {
            query = query.bind(c.as_str());
        }
        // On the writer pool: a claim writes (see [`Store::begin_write`]).
        let Some(row) = query.fetch_optional(self.writer()).await? else {
            return Ok(None);
        };
        claimed_of(&row).map(Some)
    }

    /// The claim's statement, with `full` connectors to leave out: $1 the owner, $2 the
    /// lease's end, $3 now, then the full connectors.
    fn claim_statement(&self, full: usize) -> String {
        let not_full = if full == 0 {
            String::new()
        } else {
            format!(" AND q.connector NOT IN ({})", placeholders(4, full))
        };
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Literals, not parameters: see [`crate::literal`].
        let (queued, running) = (
            literal(Status::Queued.as_str()),
            literal(Status::Running.as_str()),
        );
        let candidate = |manual_only: bool| {
            // Manual runs: a partial index of queued manual runs finds them without
            // reading the other queued runs; its condition is written as literals so the
            // planners can match it. SQLite's planner, without statistics, preferred
            // `runs_status` (status, id) — and so read every queued run, in id order,
            // looking for a manual one, at each claim: a night's claims cost O(queued)
            // each (5–7 ms at 10,000 queued), its runs O(N) each. It is told.
            let (manual, index) = if manual_only {
                let manual = format!(
                    " AND q.status = '{}' AND q.trigger = '{}'",
                    Status::Queued.as_str(),
                    Trigger::Manual.as_str()
                );
                let index = match self.backend {
                    Backend::Sqlite => " INDEXED BY runs_queued_manual",
                    Backend::Postgres => "",
                };
                (manual, index)
            } else {
                (String::new(), "")
            };
            format!(
                "(SELECT q.id FROM runs q{index}
                  WHERE q.status = {queued} AND (q.not_before IS NULL OR q.not_before <= $3){manual}{not_full}
                    AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.account_id = q.account_id AND r.status = {running})
                  ORDER BY q.id LIMIT 1 {lock})"
            )
        };
        // The names of the account's secrets, as a JSON array.
        let stored_slots = match self.backend {
            Backend::Sqlite => {
                "(SELECT json_group_array(external_id) FROM slots s
                    WHERE s.connector = runs.connector AND s.account_id = runs.account_id)"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(external_id), '[]'::json)::text FROM slots s
                    WHERE s.connector = runs.connector AND s.account_id = runs.account_id)"
            }
        };
        let secret_names = match self.backend {
            Backend::Sqlite => {
                "(SELECT json_group_array(name) FROM (SELECT name FROM account_secrets s
                    WHERE s.account_id = runs.account_id ORDER BY name))"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(name ORDER BY name), '[]'::json)::text
                    FROM account_secrets s WHERE s.account_id = runs.account_id)"
            }
        };
        // The version the run runs on, as `connector_for` chooses it (the one queued if
        // none is installed any more: the run then fails saying so).
        let version_column = |column: &str| {
            format!(
                "COALESCE({}, runs.connector_{column})",
                crate::connectors::chosen_version(
                    self.backend,
                    column,
                    "runs.connector",
                    "runs.practice_id"
                )
            )
        };
        // One statement (a transaction of its own: on SQLite a writing statement takes
        // the write lock as it starts) that also starts the run — the version it runs
        // on, the cursor it starts from — and reads what it needs: its account and
        // whether it is paused. Starting a run costs no further round trip.
        format!(
            "UPDATE runs SET status = {running}, owner = $1, lease_until = $2, started_at = $3,
                connector_version = {}, connector_sha256 = {},
                cursor_before = CASE WHEN runs.mode = '{}'
                    THEN (SELECT c.cursor FROM sync_state c WHERE c.account_id = runs.account_id)
                    END
             WHERE id = COALESCE({}, {})
             RETURNING id, practice_id, account_id, connector, trigger, mode, attempt,
                connector_version, connector_sha256, cursor_before,
                (SELECT a.label FROM accounts a WHERE a.id = runs.account_id) AS account_label,
                (SELECT a.settings FROM accounts a WHERE a.id = runs.account_id) AS account_settings,
                (SELECT a.public_info FROM accounts a WHERE a.id = runs.account_id) AS account_listing,
                {secret_names} AS account_secrets,
                {stored_slots} AS stored_slots,
                CAST(CASE WHEN EXISTS (SELECT 1 FROM account_pauses p WHERE p.account_id = runs.account_id)
                    THEN 1 ELSE 0 END AS BIGINT) AS paused",
            version_column("version"),
            version_column("sha256"),
            Mode::Incremental.as_str(),
            candidate(true),
            candidate(false)
        )
    }
}

/// What the claim's row says.
fn claimed_of(row: &sqlx::any::AnyRow) -> Result<Claimed, sqlx::Error> {
    let account_id: String = row.get("account_id");
    let practice_id: String = row.get("practice_id");
    let connector: String = row.get("connector");
    let account = match row.get::<Option<String>, _>("account_settings") {
        None => None,
        Some(settings) => Some(passerelle_model::practice::Account {
            id: account_id.clone(),
            practice_id: practice_id.clone(),
            connector: connector.clone(),
            label: row.get("account_label"),
            settings: serde_json::from_str(&settings)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            secrets: serde_json::from_str(
                &row.get::<Option<String>, _>("account_secrets")
                    .unwrap_or_else(|| "[]".into()),
            )
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            listing: row
                .get::<Option<String>, _>("account_listing")
                .and_then(|j| serde_json::from_str(&j).ok()),
        }),
    };
    Ok(Claimed {
        run_id: row.get("id"),
        practice_id,
        account_id,
        connector,
        trigger: decode(Trigger::parse(&row.get::<String, _>("trigger")))?,
        mode: decode(Mode::parse(&row.get::<String, _>("mode")))?,
        attempt: u32::try_from(row.get::<i64, _>("attempt")).unwrap_or(1),
        account,
        connector_version: row.get("connector_version"),
        connector_sha256: row.get("connector_sha256"),
        cursor: row.get("cursor_before"),
        paused: row.get::<i64, _>("paused") != 0,
        stored_slots: serde_json::from_str(
            &row.get::<Option<String>, _>("stored_slots")
                .unwrap_or_else(|| "[]".into()),
        )
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use sqlx::Row;

    /// Every subquery of the claim finds its rows by key: none reads a whole table, and
    /// the search for a queued manual run reads the manual runs' index, not every queued
    /// run (which made each claim of a night cost O(queued)).
    #[tokio::test]
    async fn the_claim_reads_no_more_than_it_takes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_data_dir(dir.path()).await.unwrap();
        for full in [0, 2] {
            let plan = format!("EXPLAIN QUERY PLAN {}", store.claim_statement(full));
            let mut query = sqlx::query(&plan).bind("owner").bind("lease").bind("now");
            for _ in 0..full {
                query = query.bind("connector");
            }
            let details: Vec<String> = query
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            assert!(
                details.iter().any(|d| d.starts_with("SEARCH a USING")),
                "{details:#?}"
            );
            assert!(
                details
                    .iter()
                    .any(|d| d.contains("q USING INDEX runs_queued_manual")),
                "{details:#?}"
            );
            let scans: Vec<&String> = details
                .iter()
                .filter(|d| {
                    d.starts_with("SCAN ")
                        && !d.starts_with("SCAN m VIRTUAL TABLE") // a canary's practices
                        && !d.starts_with("SCAN (subquery")
                        && !d.starts_with("SCAN q USING INDEX runs_queued_manual")
                })
                .collect();
            assert!(scans.is_empty(), "{scans:?} in {details:#?}");
        }
    }
}
