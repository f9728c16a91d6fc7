//! Availability slots: the multi-row upsert of a run's slots (unchanged ones not
//! written), the removal of the slots a successful run no longer saw, and reading an
//! account's slots back.

use sqlx::{Any, Row, Transaction};

use crate::error::{DbContext, StoreResult};
use crate::feed::Change;
use crate::{placeholders, row_params, Store};
use passerelle_model::feed::{ChangeKind, ChangeOp};
use passerelle_model::records::{Scope, SlotRecord};

/// Slots per multi-row upsert (12 parameters each). Not more: sqlx's SQLite driver
/// looks parameter names up per bind, so very wide statements cost more than they save
/// (100 rows per statement profiled slower than 20).
pub(super) const SLOTS_PER_STATEMENT: usize = 20;

/// Upserts slots in one statement; how many rows it wrote (new or changed slots). A
/// slot listed twice keeps its last version (as one statement per slot did);
/// PostgreSQL refuses to update one row twice in a statement, so duplicates are dropped
/// first.
pub(super) async fn upsert_slots(
    tx: &mut Transaction<'_, Any>,
    scope: &Scope,
    slots: &[&SlotRecord],
    now: &str,
    changes: &mut Vec<Change>,
) -> StoreResult<i64> {
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, s) in slots.iter().enumerate() {
        last.insert(s.external_id.as_str(), i);
    }
    let unique: Vec<&SlotRecord> = slots
        .iter()
        .enumerate()
        .filter(|(i, s)| last[s.external_id.as_str()] == *i)
        .map(|(_, s)| *s)
        .collect();
    let mut sql = String::from(
        "INSERT INTO slots (connector, account_id, external_id, practice_id, starts_at,
            starts_at_ms, ends_at, practitioner, visit_motive, place, last_seen_run, updated_at)
         VALUES ",
    );
    for i in 0..unique.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({})", row_params(tx, i * 12 + 1, 12)));
    }
    // A diff: a slot stored as it is now is not written again (its row, and the
    // database page it is on, stay untouched).
    sql.push_str(
        " ON CONFLICT (connector, account_id, external_id) DO UPDATE SET
            starts_at = excluded.starts_at, starts_at_ms = excluded.starts_at_ms,
            ends_at = excluded.ends_at, practitioner = excluded.practitioner,
            visit_motive = excluded.visit_motive, place = excluded.place,
            last_seen_run = excluded.last_seen_run, updated_at = excluded.updated_at,
            version = slots.version + 1
         WHERE NOT (slots.starts_at = excluded.starts_at
            AND slots.starts_at_ms = excluded.starts_at_ms
            AND (slots.ends_at = excluded.ends_at OR (slots.ends_at IS NULL AND excluded.ends_at IS NULL))
            AND (slots.practitioner = excluded.practitioner OR (slots.practitioner IS NULL AND excluded.practitioner IS NULL))
            AND (slots.visit_motive = excluded.visit_motive OR (slots.visit_motive IS NULL AND excluded.visit_motive IS NULL))
            AND (slots.place = excluded.place OR (slots.place IS NULL AND excluded.place IS NULL)))
         RETURNING external_id, version",
    );
    let mut query = sqlx::query(&sql);
    for s in &unique {
        query = query
            .bind(&scope.connector)
            .bind(&scope.account_id)
            .bind(&s.external_id)
            .bind(&scope.practice_id)
            .bind(&s.starts_at)
            .bind(s.starts_at_ms)
            .bind(s.ends_at.as_deref())
            .bind(s.practitioner.as_deref())
            .bind(s.visit_motive.as_deref())
            .bind(s.place.as_deref())
            .bind(scope.run_id)
            .bind(now);
    }
    let written: Vec<(String, i64)> = query
        .try_map(|r: sqlx::any::AnyRow| Ok((r.try_get(0)?, r.try_get(1)?)))
        .fetch_all(&mut **tx)
        .await
        .context("writing slots")?;
    let by_id: std::collections::HashMap<&str, &SlotRecord> = unique
        .iter()
        .map(|s| (s.external_id.as_str(), *s))
        .collect();
    for (id, version) in &written {
        let op = if *version == 1 {
            ChangeOp::Added
        } else {
            ChangeOp::Changed
        };
        if let Some(slot) = by_id.get(id.as_str()) {
            changes.push(Change::with_record(ChangeKind::Slot, op, id, slot));
        }
    }
    Ok(written.len() as i64)
}

/// Slots per `DELETE … IN (…)` of slots gone from the platform.
const GONE_PER_STATEMENT: usize = 200;

/// Removes the account's stored slots the successful run did not emit — every one,
/// whatever its date: availability is a snapshot of what the platform offers now, and a
/// slot outside the run's window (a past one, or one stored by an earlier version that
/// asked further ahead) would otherwise stay for ever.
pub(super) async fn prune_slots(
    tx: &mut Transaction<'_, Any>,
    scope: &Scope,
    seen: &std::collections::HashSet<String>,
    changes: &mut Vec<Change>,
) -> StoreResult<i64> {
    // The stored slots as the run's claim read them (only this run wrote the account's
    // slots since), else read now.
    let mut gone: Vec<String> = match &scope.stored_slots {
        Some(stored) => stored
            .iter()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect(),
        None => {
            sqlx::query("SELECT external_id FROM slots WHERE connector = $1 AND account_id = $2")
                .bind(&scope.connector)
                .bind(&scope.account_id)
                .fetch_all(&mut **tx)
                .await
                .context("reading the account's slots")?
                .iter()
                .map(|r| r.get::<String, _>("external_id"))
                .filter(|id| !seen.contains(id))
                .collect()
        }
    };
    // In one order whichever way they were found (the feed lists them so).
    gone.sort_unstable();
    let mut removed: Vec<String> = Vec::with_capacity(gone.len());
    for chunk in gone.chunks(GONE_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM slots WHERE connector = $1 AND account_id = $2 AND external_id IN ({})
             RETURNING external_id",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(&scope.connector)
            .bind(&scope.account_id);
        for id in chunk {
            query = query.bind(id);
        }
        let mut ids: Vec<String> = query
            .fetch_all(&mut **tx)
            .await
            .context("removing slots gone from the platform")?
            .iter()
            .map(|r| r.get::<String, _>("external_id"))
            .collect();
        ids.sort_unstable();
        removed.extend(ids);
    }
    changes.extend(
        removed
            .iter()
            .map(|id| Change::key_only(ChangeKind::Slot, ChangeOp::Removed, id)),
    );
    Ok(removed.len() as i64)
}

impl Store {
    /// An account's current slots, by start.
    pub async fn slots(&self, account_id: &str) -> StoreResult<Vec<SlotRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM slots WHERE account_id = $1 ORDER BY starts_at_ms, external_id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(slot_from_row).collect())
    }
}

/// A slot as its row holds it.
pub(crate) fn slot_from_row(r: &sqlx::any::AnyRow) -> SlotRecord {
    SlotRecord {
        external_id: r.get("external_id"),
        starts_at: r.get("starts_at"),
        starts_at_ms: r.get("starts_at_ms"),
        ends_at: r.get("ends_at"),
        practitioner: r.get("practitioner"),
        visit_motive: r.get("visit_motive"),
        place: r.get("place"),
    }
}
