//! Appointments and availability slots: idempotent upserts keyed by (connector, account,
//! external id), committed together with the account's cursor in one transaction.
//!
//! A run's records reach the database only through [`Store::commit`]: at each
//! checkpoint and once when the run succeeds. The final commit of a full sync also
//! tombstones the window's appointments the run did not see; every successful run
//! replaces the account's slots in its window (availability is a snapshot), as a diff:
//! unchanged slots are not written, the window's slots the run did not see are removed.

mod slots;

pub(crate) use slots::slot_from_row;
use slots::{prune_slots, upsert_slots, SLOTS_PER_STATEMENT};

use super::error::{DbContext, StoreError, StoreResult};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::feed::Change;
use super::pauses::{OwnedPauseEffect, PauseEffect};
use super::{literal, now_text, placeholders, row_params, Store};
use passerelle_model::feed::{ChangeKind, ChangeOp};
use passerelle_model::records::{
    AppointmentRecord, CommitCounts, Finish, PatientRecord, Pending, Scope, SlotRecord,
    StoredAppointment,
};
use passerelle_model::run::{Run, RunEnd};

fn content_hash<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("records serialise");
    hex::encode(Sha256::digest(json))
}

impl Store {
    /// Writes `items` and, if given, the cursor, in one transaction; with `finish`, also
    /// tombstones and prunes slots as the run's last commit.
    pub async fn commit(
        &self,
        scope: &Scope,
        items: &[Pending],
        cursor: Option<&str>,
        finish: Option<Finish>,
    ) -> StoreResult<CommitCounts> {
        let mut tx = self.begin_write().await?;
        let (counts, _) =
            commit_in(&mut tx, scope, items, cursor, finish, Checkpoint::Count).await?;
        self.check_quotas(&mut tx, scope, &counts).await?;
        // The crash tests kill the process here, the checkpoint's transaction open.
        fail::fail_point!("checkpoint-transaction", |_| -> StoreResult<CommitCounts> {
            killed_by_fail_point()
        });
        tx.commit().await.context("committing records")?;
        Ok(counts)
    }

    /// A successful run's last commit and its end, in one transaction: `items`, the
    /// final cursor, tombstones and slot pruning ([`Store::commit`] with `finish`), then
    /// the run closed with `end` — its counts raised by what this commit wrote — and
    /// its account's pause effect ([`Store::finish_run`]). The run as recorded, and
    /// whether a pause was lifted. Nothing is written if any of it fails.
    ///
    /// On SQLite it runs on the writer thread ([`Store::on_writer_thread`]): the run's
    /// thread has other runs' wasm to execute between its statements.
    pub async fn commit_and_finish_run(
        &self,
        scope: &Scope,
        last: LastCommit,
        end: &RunEnd,
        pause: PauseEffect<'_>,
    ) -> StoreResult<(Run, bool)> {
        let store = self.clone();
        let (scope, end, pause) = (scope.clone(), end.clone(), OwnedPauseEffect::from(pause));
        self.on_writer_thread(async move {
            store
                .commit_and_finish_run_here(&scope, last, &end, pause.as_effect())
                .await
        })
        .await
    }

    async fn commit_and_finish_run_here(
        &self,
        scope: &Scope,
        last: LastCommit,
        end: &RunEnd,
        pause: PauseEffect<'_>,
    ) -> StoreResult<(Run, bool)> {
        let mut tx = self.begin_write().await?;
        // The run's end is written where a checkpoint is recorded (its counts and
        // cursor, the run's row locked before the feed's counter as in every commit).
        let (counts, ended) = commit_in(
            &mut tx,
            scope,
            &last.items,
            last.cursor.as_deref(),
            Some(last.finish),
            Checkpoint::End(end),
        )
        .await?;
        self.check_quotas(&mut tx, scope, &counts).await?;
        let run = ended.expect("a commit with the run's end returns it");
        let lifted = super::runs::after_run_end(&mut tx, pause).await?;
        let ended = (run, lifted);
        // The crash tests kill the process here, the run's last transaction open.
        fail::fail_point!("last-transaction", |_| -> StoreResult<(Run, bool)> {
            killed_by_fail_point()
        });
        tx.commit()
            .await
            .context("committing records and the run's end")?;
        Ok(ended)
    }
}

/// A fail point's `return`: the process SIGKILLs itself (as sudden as an operator's
/// `kill -9`, and no core dump).
#[cfg(feature = "failpoints")]
fn killed_by_fail_point() -> ! {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    unreachable!("SIGKILL cannot be caught")
}

/// What a successful run commits last, with its end ([`Store::commit_and_finish_run`]).
pub struct LastCommit {
    pub items: Vec<Pending>,
    pub cursor: Option<String>,
    pub finish: Finish,
}

/// How a commit is recorded in its run (a run that is not running refuses it either
/// way).
#[derive(Debug, Clone, Copy)]
enum Checkpoint<'a> {
    /// Its counts and cursor are added to the run.
    Count,
    /// The run ends with this end, its counts raised by what this commit wrote (a
    /// successful run's last commit): one statement instead of two.
    End(&'a RunEnd),
}

/// [`Store::commit`] inside `tx`: writes `items` and the cursor, with `finish` the
/// run's last commit's tombstones and pruning, and records the checkpoint in the run
/// (see [`Checkpoint`]) — refused ([`StoreError::Conflict`], `tx` rolled back) if the
/// run is not running.
async fn commit_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    scope: &Scope,
    items: &[Pending],
    cursor: Option<&str>,
    finish: Option<Finish>,
    checkpoint: Checkpoint<'_>,
) -> StoreResult<(CommitCounts, Option<Run>)> {
    {
        let mut counts = CommitCounts::default();
        // What this commit changes, appended to the feed as its transaction's last write.
        let mut changes: Vec<Change> = Vec::new();
        let now = now_text();
        // Slots go in multi-row statements (one per SLOTS_PER_STATEMENT).
        let mut slots: Vec<&SlotRecord> = Vec::new();
        let mut appointments: Vec<&AppointmentRecord> = Vec::new();
        for item in items {
            match item {
                Pending::Appointment(a) => {
                    // A batch holds an id once: a repeated one is compared with its
                    // earlier version, as when each was written on its own.
                    if appointments.len() >= APPOINTMENTS_PER_STATEMENT
                        || appointments
                            .iter()
                            .any(|b: &&AppointmentRecord| b.external_id == a.external_id)
                    {
                        let batch = std::mem::take(&mut appointments);
                        upsert_appointments(tx, scope, &batch, &now, &mut counts, &mut changes)
                            .await?;
                    }
                    appointments.push(a);
                }
                Pending::DeleteAppointment(id) => {
                    // In emission order: the upserts before this deletion first.
                    let batch = std::mem::take(&mut appointments);
                    upsert_appointments(tx, scope, &batch, &now, &mut counts, &mut changes).await?;
                    let deleted: Vec<String> = sqlx::query_scalar(
                        "UPDATE appointments SET deleted_at = $4, deleted_reason = 'deleted', updated_at = $4,
                            last_seen_run = $5
                         WHERE connector = $1 AND account_id = $2 AND external_id = $3
                           AND deleted_at IS NULL
                         RETURNING external_id",
                    )
                    .bind(&scope.connector)
                    .bind(&scope.account_id)
                    .bind(id)
                    .bind(&now)
                    .bind(scope.run_id)
                    .fetch_all(&mut **tx)
                    .await?;
                    counts.appointments_deleted += deleted.len() as i64;
                    changes.extend(deleted.iter().map(|id| {
                        Change::key_only(ChangeKind::Appointment, ChangeOp::Deleted, id)
                    }));
                }
                Pending::Quarantine(q) => {
                    super::quarantine::upsert(tx, scope, q, &now).await?;
                    counts.quarantined += 1;
                }
                Pending::Slot(s) => {
                    slots.push(s);
                    if slots.len() >= SLOTS_PER_STATEMENT {
                        counts.slots_written += upsert_slots(
                            tx,
                            scope,
                            &std::mem::take(&mut slots),
                            &now,
                            &mut changes,
                        )
                        .await?;
                    }
                }
            }
        }
        upsert_appointments(tx, scope, &appointments, &now, &mut counts, &mut changes).await?;
        if !slots.is_empty() {
            counts.slots_written += upsert_slots(tx, scope, &slots, &now, &mut changes).await?;
        }
        if let Some(finish) = finish {
            let (start, end) = finish.window_ms;
            if finish.tombstone {
                let tombstoned: Vec<String> = sqlx::query_scalar(
                    "UPDATE appointments SET deleted_at = $6, deleted_reason = 'tombstoned', updated_at = $6
                     WHERE connector = $1 AND account_id = $2 AND last_seen_run <> $3
                       AND starts_at_ms >= $4 AND starts_at_ms < $5 AND deleted_at IS NULL
                     RETURNING external_id",
                )
                .bind(&scope.connector)
                .bind(&scope.account_id)
                .bind(scope.run_id)
                .bind(start)
                .bind(end)
                .bind(&now)
                .fetch_all(&mut **tx)
                .await?;
                counts.appointments_tombstoned = tombstoned.len() as i64;
                changes.extend(
                    tombstoned.iter().map(|id| {
                        Change::key_only(ChangeKind::Appointment, ChangeOp::Tombstoned, id)
                    }),
                );
                super::quarantine::clear_resolved(tx, scope).await?;
            }
            counts.slots_removed = prune_slots(tx, scope, &finish.seen_slots, &mut changes).await?;
        }
        // Before the feed's counter: every commit locks its run's row first.
        let ended = match checkpoint {
            Checkpoint::Count => {
                // The run's record says what its checkpoints committed, in the same transaction
                // (a run killed later tells the truth). A run that is not running any more — its
                // daemon's lease ended and another daemon closed it — commits nothing.
                let held = sqlx::query(&format!(
                    "UPDATE runs SET appointments_added = appointments_added + $2,
                    appointments_changed = appointments_changed + $3,
                    appointments_deleted = appointments_deleted + $4,
                    appointments_tombstoned = appointments_tombstoned + $5,
                    slots_written = slots_written + $6, slots_removed = slots_removed + $7,
                    quarantined = quarantined + $8, checkpoints = checkpoints + 1,
                    cursor_after = COALESCE($9, cursor_after)
                 WHERE id = $1 AND status = {}",
                    literal(passerelle_model::run::Status::Running.as_str())
                ))
                .bind(scope.run_id)
                .bind(counts.appointments_added)
                .bind(counts.appointments_changed)
                .bind(counts.appointments_deleted)
                .bind(counts.appointments_tombstoned)
                .bind(counts.slots_written)
                .bind(counts.slots_removed)
                .bind(counts.quarantined)
                .bind(cursor)
                .execute(&mut **tx)
                .await
                .context("recording the checkpoint in the run")?;
                if held.rows_affected() != 1 {
                    // The caller's transaction is dropped, so rolled back.
                    return Err(StoreError::Conflict(format!(
                    "run {} is not running any more (its daemon's lease ended and another daemon \
                     closed it): this checkpoint was not committed",
                    scope.run_id
                )));
                }
                None
            }
            Checkpoint::End(end) => {
                let mut end = end.clone();
                counts.add_to(&mut end.counts);
                end.counts.checkpoints += 1;
                if let Some(cursor) = cursor {
                    end.cursor_after = Some(cursor.to_string());
                }
                let run = super::runs::end_run_row(tx, scope.run_id, &end)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Conflict(format!("run {} was closed meanwhile", scope.run_id))
                    })?;
                Some(run)
            }
        };
        if let Some(cursor) = cursor {
            sqlx::query(
                "INSERT INTO sync_state (account_id, cursor, last_run_id, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account_id) DO UPDATE SET cursor = excluded.cursor,
                    last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
            )
            .bind(&scope.account_id)
            .bind(cursor)
            .bind(scope.run_id)
            .bind(&now)
            .execute(&mut **tx)
            .await?;
        }
        super::feed::append(tx, scope, &changes, &now).await?;
        Ok((counts, ended))
    }
}

impl Store {
    /// An account's appointments (tombstoned and deleted ones included), by external id.
    pub async fn appointments(&self, account_id: &str) -> StoreResult<Vec<StoredAppointment>> {
        let rows =
            sqlx::query("SELECT * FROM appointments WHERE account_id = $1 ORDER BY external_id")
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(appointment_from_row).collect())
    }

    /// The appointments of an account that one run wrote or saw (its checkpoints).
    pub async fn appointments_of_run(
        &self,
        account_id: &str,
        run_id: i64,
    ) -> StoreResult<Vec<StoredAppointment>> {
        let rows = sqlx::query(
            "SELECT * FROM appointments WHERE account_id = $1 AND last_seen_run = $2
             ORDER BY external_id",
        )
        .bind(account_id)
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(appointment_from_row).collect())
    }
}

/// Appointments per batch (20 parameters each; see [`SLOTS_PER_STATEMENT`]).
const APPOINTMENTS_PER_STATEMENT: usize = 20;

/// Upserts a batch of appointments (distinct external ids) in at most three
/// statements: reads the stored versions' content hashes, marks the unchanged ones as
/// seen by this run, writes the new and changed ones (a tombstoned or deleted one seen
/// again is revived, counted as a change).
async fn upsert_appointments(
    tx: &mut Transaction<'_, Any>,
    scope: &Scope,
    batch: &[&AppointmentRecord],
    now: &str,
    counts: &mut CommitCounts,
    changes: &mut Vec<Change>,
) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT external_id, content_hash, deleted_at FROM appointments
         WHERE connector = $1 AND account_id = $2 AND external_id IN ({})",
        placeholders(3, batch.len())
    );
    let mut query = sqlx::query_as::<_, (String, String, Option<String>)>(&sql)
        .bind(&scope.connector)
        .bind(&scope.account_id);
    for a in batch {
        query = query.bind(&a.external_id);
    }
    let existing: std::collections::HashMap<String, (String, bool)> = query
        .fetch_all(&mut **tx)
        .await
        .context("reading stored appointments")?
        .into_iter()
        .map(|(id, hash, deleted_at)| (id, (hash, deleted_at.is_some())))
        .collect();
    let mut unchanged: Vec<&str> = Vec::new();
    let mut write: Vec<(&AppointmentRecord, String)> = Vec::new();
    for a in batch {
        let hash = content_hash(a);
        match existing.get(&a.external_id) {
            Some((stored, false)) if *stored == hash => unchanged.push(&a.external_id),
            Some(_) => {
                counts.appointments_changed += 1;
                changes.push(Change::with_record(
                    ChangeKind::Appointment,
                    ChangeOp::Changed,
                    &a.external_id,
                    *a,
                ));
                write.push((a, hash));
            }
            None => {
                counts.appointments_added += 1;
                changes.push(Change::with_record(
                    ChangeKind::Appointment,
                    ChangeOp::Added,
                    &a.external_id,
                    *a,
                ));
                write.push((a, hash));
            }
        }
    }
    if !unchanged.is_empty() {
        let sql = format!(
            "UPDATE appointments SET last_seen_run = $3
             WHERE connector = $1 AND account_id = $2 AND external_id IN ({})",
            placeholders(4, unchanged.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(&scope.connector)
            .bind(&scope.account_id)
            .bind(scope.run_id);
        for id in &unchanged {
            query = query.bind(*id);
        }
        query
            .execute(&mut **tx)
            .await
            .context("marking unchanged appointments as seen")?;
    }
    if write.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO appointments (connector, account_id, external_id, practice_id, starts_at,
            starts_at_ms, ends_at, status, practitioner, visit_motive, patient_external_id,
            patient_first_name, patient_last_name, patient_birth_date, patient_phone,
            patient_email, platform_updated_at, content_hash, first_seen_run, last_seen_run,
            deleted_at, deleted_reason, updated_at)
         VALUES ",
    );
    for i in 0..write.len() {
        // 20 parameters a row, each used once in binding order ([`row_params`]): the
        // run is bound twice, as first and last seen.
        let b = i * 21;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "({}, NULL, NULL, {})",
            row_params(tx, b + 1, 20),
            row_params(tx, b + 21, 1)
        ));
    }
    sql.push_str(
        " ON CONFLICT (connector, account_id, external_id) DO UPDATE SET
            starts_at = excluded.starts_at, starts_at_ms = excluded.starts_at_ms,
            ends_at = excluded.ends_at, status = excluded.status,
            practitioner = excluded.practitioner, visit_motive = excluded.visit_motive,
            patient_external_id = excluded.patient_external_id,
            patient_first_name = excluded.patient_first_name,
            patient_last_name = excluded.patient_last_name,
            patient_birth_date = excluded.patient_birth_date,
            patient_phone = excluded.patient_phone, patient_email = excluded.patient_email,
            platform_updated_at = excluded.platform_updated_at,
            content_hash = excluded.content_hash, last_seen_run = excluded.last_seen_run,
            deleted_at = NULL, deleted_reason = NULL, updated_at = excluded.updated_at",
    );
    let mut query = sqlx::query(&sql);
    for (a, hash) in &write {
        let has_patient = a.patient.is_some();
        let p = a.patient.as_ref();
        query = query
            .bind(&scope.connector)
            .bind(&scope.account_id)
            .bind(&a.external_id)
            .bind(&scope.practice_id)
            .bind(&a.starts_at)
            .bind(a.starts_at_ms)
            .bind(a.ends_at.as_deref())
            .bind(&a.status)
            .bind(a.practitioner.as_deref())
            .bind(a.visit_motive.as_deref())
            .bind(p.and_then(|p| p.external_id.as_deref()))
            .bind(p.filter(|_| has_patient).map(|p| p.first_name.as_str()))
            .bind(p.filter(|_| has_patient).map(|p| p.last_name.as_str()))
            .bind(p.and_then(|p| p.birth_date.as_deref()))
            .bind(p.and_then(|p| p.phone.as_deref()))
            .bind(p.and_then(|p| p.email.as_deref()))
            .bind(a.platform_updated_at.as_deref())
            .bind(hash.as_str())
            .bind(scope.run_id)
            .bind(scope.run_id)
            .bind(now);
    }
    query
        .execute(&mut **tx)
        .await
        .context("writing appointments")?;
    Ok(())
}

/// The patient columns of an appointment row (none without a first name).
fn patient_from_row(r: &sqlx::any::AnyRow) -> Option<PatientRecord> {
    let first: Option<String> = r.get("patient_first_name");
    first.map(|first_name| PatientRecord {
        external_id: r.get("patient_external_id"),
        first_name,
        last_name: r
            .get::<Option<String>, _>("patient_last_name")
            .unwrap_or_default(),
        birth_date: r.get("patient_birth_date"),
        phone: r.get("patient_phone"),
        email: r.get("patient_email"),
    })
}

pub(super) fn appointment_from_row(r: &sqlx::any::AnyRow) -> StoredAppointment {
    let patient = patient_from_row(r);
    StoredAppointment {
        practice_id: r.get("practice_id"),
        account_id: r.get("account_id"),
        record: AppointmentRecord {
            external_id: r.get("external_id"),
            starts_at: r.get("starts_at"),
            starts_at_ms: r.get("starts_at_ms"),
            ends_at: r.get("ends_at"),
            status: r.get("status"),
            practitioner: r.get("practitioner"),
            visit_motive: r.get("visit_motive"),
            patient,
            platform_updated_at: r.get("platform_updated_at"),
        },
        deleted_reason: r.get("deleted_reason"),
        first_seen_run: r.get("first_seen_run"),
        last_seen_run: r.get("last_seen_run"),
    }
}

impl Store {
    /// Reduces the patient of every appointment deleted or tombstoned before `before`
    /// (RFC 3339, as stored) with `forget`, and clears its content hash so that an
    /// appointment the platform lists again is written in full. Batches of 500, each
    /// its own transaction; returns how many were reduced.
    pub async fn forget_deleted_patients(
        &self,
        before: &str,
        forget: super::feed::ForgetPatient,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(
                "SELECT connector, account_id, external_id, patient_external_id,
                        patient_first_name, patient_last_name, patient_birth_date,
                        patient_phone, patient_email
                 FROM appointments
                 WHERE deleted_at IS NOT NULL AND deleted_at < $1 AND content_hash <> ''
                   AND patient_first_name IS NOT NULL
                 LIMIT 500",
            )
            .bind(before)
            .fetch_all(&mut *tx)
            .await
            .context("reading deleted appointments' patients")?;
            if rows.is_empty() {
                return Ok(total);
            }
            for r in &rows {
                let Some(patient) = patient_from_row(r) else {
                    continue;
                };
                let p = forget(patient);
                sqlx::query(
                    "UPDATE appointments SET patient_external_id = $1, patient_first_name = $2,
                        patient_last_name = $3, patient_birth_date = $4, patient_phone = $5,
                        patient_email = $6, content_hash = ''
                     WHERE connector = $7 AND account_id = $8 AND external_id = $9",
                )
                .bind(p.external_id)
                .bind(p.first_name)
                .bind(p.last_name)
                .bind(p.birth_date)
                .bind(p.phone)
                .bind(p.email)
                .bind(r.get::<String, _>("connector"))
                .bind(r.get::<String, _>("account_id"))
                .bind(r.get::<String, _>("external_id"))
                .execute(&mut *tx)
                .await
                .context("forgetting a deleted appointment's patient")?;
            }
            tx.commit()
                .await
                .context("forgetting deleted appointments' patients")?;
            total += rows.len() as u64;
        }
    }
}
