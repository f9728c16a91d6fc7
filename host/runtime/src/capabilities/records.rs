//! The `records` import: validates what a connector emits, buffers it, and commits it with
//! the cursor at each checkpoint (one transaction) through the run's [`RecordSink`] (the
//! service's, over the store). The last commit of a successful run is not the
//! capability's: it hands it over ([`RecordsSession::last_commit`]) and the service's
//! run recorder writes it with the run's end. Also the
//! run's drift policy and the items a connector sets aside under `quarantine` (kept in
//! the database for review, never logged: they may hold patient data).
//!
//! Validation errors name the item and field, never the value. Every patient value is
//! handed to the run's scrubber as soon as it is emitted, valid or not.

use std::sync::Arc;
use tracing::Instrument as _;

use anyhow::Result;
use chrono::{DateTime, NaiveDate};
use futures::future::BoxFuture;

use crate::contract::wit;
use crate::sandbox::budget::RunMemory;
use crate::scrub::Scrubber;
use passerelle_model::records::CommitCounts;
use passerelle_model::records::{
    AppointmentRecord, Finish, PatientRecord, Pending, QuarantineRecord, Scope, SlotRecord,
};
use passerelle_model::{LimitExceeded, QuotaExceeded};

/// Where a run's checkpoints are committed: each call is one transaction that writes
/// `items` and the cursor for `scope`'s run, refused when that run is no longer running.
pub trait RecordSink: Send + Sync {
    fn commit<'a>(
        &'a self,
        scope: &'a Scope,
        items: &'a [Pending],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CommitCounts>>;
}

/// Prepares the records capability of one `sync()` (as Spin's factors prepare an
/// instance): checkpoints go to `sink` for `scope`'s run within `limits`, the operator's
/// drift `policy` is what the connector hears, and slots starting before `now_ms` (the
/// run's clock) or at or after `window_end_ms` are left out; the free text of every
/// record is scrubbed with the run's scrubber. `describe()` and `check()` get none: they write nothing.
pub fn prepare(
    sink: Arc<dyn RecordSink>,
    scope: Scope,
    limits: &passerelle_model::limits::Limits,
    policy: wit::DriftPolicy,
    now_ms: i64,
    window_end_ms: i64,
) -> RecordsSession {
    RecordsSession::new(sink, scope, limits, policy)
        .slots_from(now_ms)
        .slots_until(window_end_ms)
}

/// A successful run's last commit, handed to whoever ends the run: the records not
/// committed yet, the final cursor, and the window to tombstone (full sync) and prune.
#[derive(Debug)]
pub struct FinalCommit {
    pub items: Vec<Pending>,
    pub cursor: Option<String>,
    pub finish: Finish,
}

/// Longest cursor a connector may checkpoint.
pub const MAX_CURSOR_BYTES: usize = 4096;
const MAX_ID_BYTES: usize = 256;
const MAX_TEXT_BYTES: usize = 2048;
/// Largest item a connector may set aside.
const MAX_QUARANTINED_ITEM_BYTES: usize = 64 * 1024;

/// What a successful run commits last ([`RecordsSession::last_commit`]): its final
/// cursor and the window it tombstones (full sync) and prunes.
#[derive(Debug, Clone)]
pub struct LastCommitOf {
    pub cursor: Option<String>,
    pub finish: Finish,
}

/// One run's record buffer and what it committed.
pub struct RecordsSession {
    sink: Arc<dyn RecordSink>,
    scope: Scope,
    buffer: Vec<Pending>,
    /// Host memory the buffer takes (about).
    buffer_bytes: u64,
    emitted: u64,
    max_records: u64,
    max_checkpoint_records: u64,
    max_pending_bytes: u64,
    /// Totals of everything committed so far.
    /// (In the run's counts' shape: the HTTP counts stay zero here.)
    pub committed: passerelle_model::run::RunCounts,
    pub checkpoints: i64,
    /// The cursor of the last successful commit.
    pub last_cursor: Option<String>,
    /// The operator's policy for items the connector cannot read.
    policy: wit::DriftPolicy,
    /// Slots starting before this (Unix ms, the run's "now") are not bookable any more:
    /// they are not stored.
    slots_from_ms: i64,
    /// Slots starting at or after this (Unix ms, the window's end) are beyond what the
    /// run was asked for: not stored either.
    slots_until_ms: i64,
    /// Every slot emitted so far (external ids): the last commit keeps these and removes
    /// the window's other stored slots.
    seen_slots: std::collections::HashSet<String>,
    /// The run's share of the process's memory budget, charged with the buffer.
    memory: Option<Arc<std::sync::Mutex<RunMemory>>>,
}

impl RecordsSession {
    pub fn new(
        sink: Arc<dyn RecordSink>,
        scope: Scope,
        limits: &passerelle_model::limits::Limits,
        policy: wit::DriftPolicy,
    ) -> Self {
        RecordsSession {
            policy,
            sink,
            scope,
            buffer: Vec::new(),
            buffer_bytes: 0,
            emitted: 0,
            max_records: limits.records,
            max_checkpoint_records: limits.checkpoint_records,
            max_pending_bytes: limits.pending_records_bytes(),
            committed: Default::default(),
            checkpoints: 0,
            last_cursor: None,
            slots_from_ms: i64::MIN,
            slots_until_ms: i64::MAX,
            seen_slots: Default::default(),
            memory: None,
        }
    }

    /// Charges the buffer to the run's share of the memory budget from now on.
    pub(crate) fn charge_to(&mut self, memory: Arc<std::sync::Mutex<RunMemory>>) {
        self.memory = Some(memory);
    }

    /// Leaves out slots that start before `now_ms`: public availability in the past is
    /// not a bookable slot, whatever the platform sent.
    pub fn slots_from(self, now_ms: i64) -> Self {
        RecordsSession {
            slots_from_ms: now_ms,
            ..self
        }
    }

    /// Leaves out slots that start at or after `end_ms` (the window's end): availability
    /// the run was not asked for, which no later run would correct.
    pub fn slots_until(self, end_ms: i64) -> Self {
        RecordsSession {
            slots_until_ms: end_ms,
            ..self
        }
    }

    /// Records waiting for the next checkpoint.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    fn count(&mut self, n: usize) -> wasmtime::Result<()> {
        self.emitted += n as u64;
        if self.emitted > self.max_records {
            return Err(LimitExceeded(format!(
                "records: the run may emit {} (limits.records)",
                self.max_records
            ))
            .into());
        }
        if (self.buffer.len() + n) as u64 > self.max_checkpoint_records {
            return Err(LimitExceeded(format!(
                "records per checkpoint: at most {} between two checkpoints (limits.checkpoint_records)",
                self.max_checkpoint_records
            ))
            .into());
        }
        Ok(())
    }

    /// Adds validated records to the buffer, within the pending-memory budget.
    fn buffer(&mut self, items: Vec<Pending>) -> wasmtime::Result<()> {
        let bytes = items.iter().map(Pending::approx_bytes).sum::<u64>();
        if self.buffer_bytes + bytes > self.max_pending_bytes {
            return Err(LimitExceeded(format!(
                "pending records: at most {} MiB between two checkpoints (limits.pending_records_mib)",
                self.max_pending_bytes >> 20
            ))
            .into());
        }
        if let Some(memory) = &self.memory {
            memory
                .lock()
                .expect("run memory")
                .grow(usize::try_from(bytes).unwrap_or(usize::MAX))?;
        }
        self.buffer_bytes += bytes;
        self.buffer.extend(items);
        Ok(())
    }

    fn cleared(&mut self) {
        self.buffer.clear();
        if let Some(memory) = &self.memory {
            memory
                .lock()
                .expect("run memory")
                .shrink(usize::try_from(self.buffer_bytes).unwrap_or(usize::MAX));
        }
        self.buffer_bytes = 0;
    }

    pub fn upsert_appointments(
        &mut self,
        items: Vec<wit::Appointment>,
        scrubber: &mut Scrubber,
    ) -> wasmtime::Result<Result<(), String>> {
        self.count(items.len())?;
        for a in &items {
            if let Some(p) = &a.patient {
                learn_patient(p, scrubber);
            }
        }
        scrubber.within_budget()?;
        let mut valid = Vec::with_capacity(items.len());
        for (i, a) in items.into_iter().enumerate() {
            match appointment(a, scrubber) {
                Ok(r) => valid.push(Pending::Appointment(r)),
                Err(field) => return Ok(Err(format!("appointments[{i}].{field}"))),
            }
        }
        self.buffer(valid)?;
        Ok(Ok(()))
    }

    pub fn delete_appointments(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.count(ids.len())?;
        for (i, id) in ids.iter().enumerate() {
            if let Err(e) = check_id(id) {
                return Ok(Err(format!("external-ids[{i}] {e}")));
            }
        }
        self.buffer(ids.into_iter().map(Pending::DeleteAppointment).collect())?;
        Ok(Ok(()))
    }

    pub fn upsert_slots(
        &mut self,
        items: Vec<wit::Slot>,
        scrubber: &mut Scrubber,
    ) -> wasmtime::Result<Result<(), String>> {
        self.count(items.len())?;
        let mut valid = Vec::with_capacity(items.len());
        for (i, s) in items.into_iter().enumerate() {
            match slot(s, scrubber) {
                Ok(r) if r.starts_at_ms < self.slots_from_ms => {}
                Ok(r) if r.starts_at_ms >= self.slots_until_ms => {}
                Ok(r) => valid.push(Pending::Slot(r)),
                Err(field) => return Ok(Err(format!("slots[{i}].{field}"))),
            }
        }
        for item in &valid {
            if let Pending::Slot(r) = item {
                self.seen_slots.insert(r.external_id.clone());
            }
        }
        self.buffer(valid)?;
        Ok(Ok(()))
    }

    pub fn drift_policy(&self) -> wit::DriftPolicy {
        self.policy
    }

    /// Buffers an item set aside (policy `quarantine` only).
    pub fn quarantine(
        &mut self,
        q: wit::QuarantinedItem,
        scrubber: &mut Scrubber,
    ) -> wasmtime::Result<Result<(), String>> {
        if self.policy != wit::DriftPolicy::Quarantine {
            return Ok(Err(
                "the drift policy of this connector is `fail`: return schema-drift instead".into(),
            ));
        }
        self.count(1)?;
        if q.item.len() > MAX_QUARANTINED_ITEM_BYTES {
            return Ok(Err(format!(
                "item is {} bytes; at most {MAX_QUARANTINED_ITEM_BYTES}",
                q.item.len()
            )));
        }
        let d = q.drift;
        for (field, value) in [
            ("drift.endpoint", &d.endpoint),
            ("drift.path", &d.path),
            ("drift.expected", &d.expected),
            ("drift.found", &d.found),
        ] {
            if value.len() > MAX_TEXT_BYTES {
                return Ok(Err(format!(
                    "{field} is longer than {MAX_TEXT_BYTES} bytes"
                )));
            }
        }
        // The item may hold patient values the connector could not read: whatever text
        // it carries is removed from the run's logs too.
        scrubber.add_quarantined_item(&q.item);
        scrubber.within_budget()?;
        // The report is shown to every reader: scrubbed like any connector text, the
        // item's own strings included.
        self.buffer(vec![Pending::Quarantine(QuarantineRecord {
            drift: passerelle_model::run::DriftReport {
                endpoint: scrubber.scrub(&d.endpoint),
                path: scrubber.scrub(&d.path),
                expected: scrubber.scrub(&d.expected),
                found: scrubber.scrub(&d.found),
                shape: None,
            },
            item: q.item,
        })])?;
        Ok(Ok(()))
    }

    /// Commits the buffer with `cursor`. On failure the buffer is kept for the next try.
    pub async fn checkpoint(
        &mut self,
        cursor: String,
        scrubber: &mut Scrubber,
    ) -> wasmtime::Result<Result<(), String>> {
        if cursor.len() > MAX_CURSOR_BYTES {
            return Ok(Err(format!(
                "cursor is {} bytes; at most {MAX_CURSOR_BYTES}",
                cursor.len()
            )));
        }
        let span = tracing::debug_span!(
            "checkpoint",
            number = self.checkpoints + 1,
            items = self.buffer.len()
        );
        match self.commit(Some(cursor)).instrument(span).await {
            Ok(()) => Ok(Ok(())),
            // Past the account's quota: the run ends here, whatever the connector does.
            Err(e) if e.is::<QuotaExceeded>() => Err(wasmtime::Error::new(
                e.downcast::<QuotaExceeded>().expect("checked"),
            )),
            Err(e) => {
                let detail = scrubber.scrub(&format!("{e:#}"));
                tracing::error!(error = %detail, "checkpoint failed to commit");
                Ok(Err(
                    "the host could not store the records (see the host log)".into(),
                ))
            }
        }
    }

    /// The last commit of a successful run — the rest of the buffer, the final cursor,
    /// the window's tombstones (full sync) and slot pruning — for the run's recorder to
    /// write with the run's end, in one transaction. The buffer is handed over.
    pub fn last_commit(&mut self, last: LastCommitOf) -> Result<FinalCommit> {
        if let Some(c) = &last.cursor {
            anyhow::ensure!(
                c.len() <= MAX_CURSOR_BYTES,
                "the final cursor is {} bytes; at most {MAX_CURSOR_BYTES}",
                c.len()
            );
        }
        let items = std::mem::take(&mut self.buffer);
        self.buffer_bytes = 0;
        Ok(FinalCommit {
            items,
            cursor: last.cursor,
            finish: Finish {
                seen_slots: std::mem::take(&mut self.seen_slots),
                ..last.finish
            },
        })
    }

    /// The run, practice, account and connector the records belong to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    async fn commit(&mut self, cursor: Option<String>) -> Result<()> {
        let counts = self
            .sink
            .commit(&self.scope, &self.buffer, cursor.as_deref())
            .await?;
        self.cleared();
        self.checkpoints += 1;
        counts.add_to(&mut self.committed);
        if cursor.is_some() {
            self.last_cursor = cursor;
        }
        Ok(())
    }
}

fn learn_patient(p: &wit::Patient, scrubber: &mut Scrubber) {
    scrubber.add_patient_value(&p.first_name);
    scrubber.add_patient_value(&p.last_name);
    scrubber.add_identifying(&format!("{} {}", p.first_name, p.last_name));
    scrubber.add_identifying(&format!("{} {}", p.last_name, p.first_name));
    if let Some(d) = &p.birth_date {
        scrubber.add_birth_date(d);
    }
    if let Some(ph) = &p.phone {
        scrubber.add_phone(ph);
        scrubber.add_identifying(ph);
    }
    if let Some(e) = &p.email {
        scrubber.add_identifying(e);
    }
}

fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("is empty")
    } else if id.len() > MAX_ID_BYTES {
        Err("is longer than 256 bytes")
    } else {
        Ok(())
    }
}

/// Parses an RFC 3339 timestamp; returns it as given (offset kept) and in Unix ms.
fn timestamp(text: &str) -> Option<(String, i64)> {
    let t = DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some((t.to_rfc3339(), t.timestamp_millis()))
}

fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.len() > MAX_TEXT_BYTES => {
            Err(format!("{field} is longer than {MAX_TEXT_BYTES} bytes"))
        }
        v => Ok(v),
    }
}

/// Free text of a record that others read (practitioner, visit motive, place): the
/// connector's, so untrusted — scrubbed of the run's secrets, of every value that alone
/// names a patient emitted so far (full names, e-mails, phones) and of e-mail and phone
/// patterns, so it carries no patient datum to a `read` token, a webhook or the
/// open-data export. (Not of single names — "Dr Philippe Garcia" is no patient's datum
/// because a patient is called Garcia — and a practitioner field not of patients' names
/// at all: it names a professional by design.)
fn public_text(
    field: &'static str,
    value: Option<String>,
    scrubber: &mut Scrubber,
) -> Result<Option<String>, String> {
    // A practitioner field names a professional by design: a patient's name in it is
    // that professional's, not the patient's (patterns and secrets are removed all the
    // same); every other field is scrubbed of patients' names too.
    let names = field != "practitioner";
    Ok(text(field, value)?.map(|v| scrubber.scrub_record_text(&v, names)))
}

fn appointment(a: wit::Appointment, scrubber: &mut Scrubber) -> Result<AppointmentRecord, String> {
    check_id(&a.external_id).map_err(|e| format!("external-id {e}"))?;
    let (starts_at, starts_at_ms) =
        timestamp(&a.starts_at).ok_or("starts-at is not an RFC 3339 timestamp with offset")?;
    let ends_at = match a.ends_at {
        Some(e) => Some(
            timestamp(&e)
                .ok_or("ends-at is not an RFC 3339 timestamp with offset")?
                .0,
        ),
        None => None,
    };
    let platform_updated_at = match a.updated_at {
        Some(e) => Some(
            timestamp(&e)
                .ok_or("updated-at is not an RFC 3339 timestamp with offset")?
                .0,
        ),
        None => None,
    };
    let patient = match a.patient {
        Some(p) => {
            if let Some(d) = &p.birth_date {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| "patient.birth-date is not a YYYY-MM-DD date")?;
            }
            Some(PatientRecord {
                external_id: text("patient.external-id", p.external_id)?,
                first_name: text("patient.first-name", Some(p.first_name))?.unwrap_or_default(),
                last_name: text("patient.last-name", Some(p.last_name))?.unwrap_or_default(),
                birth_date: p.birth_date,
                phone: text("patient.phone", p.phone)?,
                email: text("patient.email", p.email)?,
            })
        }
        None => None,
    };
    Ok(AppointmentRecord {
        external_id: a.external_id,
        starts_at,
        starts_at_ms,
        ends_at,
        status: status_text(a.status).to_string(),
        practitioner: public_text("practitioner", a.practitioner, scrubber)?,
        visit_motive: public_text("visit-motive", a.visit_motive, scrubber)?,
        patient,
        platform_updated_at,
    })
}

fn slot(s: wit::Slot, scrubber: &mut Scrubber) -> Result<SlotRecord, String> {
    check_id(&s.external_id).map_err(|e| format!("external-id {e}"))?;
    let (starts_at, starts_at_ms) =
        timestamp(&s.starts_at).ok_or("starts-at is not an RFC 3339 timestamp with offset")?;
    let ends_at = match s.ends_at {
        Some(e) => Some(
            timestamp(&e)
                .ok_or("ends-at is not an RFC 3339 timestamp with offset")?
                .0,
        ),
        None => None,
    };
    Ok(SlotRecord {
        external_id: s.external_id,
        starts_at,
        starts_at_ms,
        ends_at,
        practitioner: public_text("practitioner", s.practitioner, scrubber)?,
        visit_motive: public_text("visit-motive", s.visit_motive, scrubber)?,
        place: public_text("place", s.place, scrubber)?,
    })
}

/// The `records` import's view of a run: its session (none outside `sync`), the scrubber
/// that learns every patient value emitted, and the log a checkpoint flushes.
pub struct RecordsView<'a> {
    pub records: &'a mut Option<RecordsSession>,
    pub scrubber: &'a mut Scrubber,
    pub log: &'a mut super::log::GuestLog,
}

fn no_records<T>() -> wasmtime::Result<Result<T, String>> {
    Ok(Err("records can only be written during sync".into()))
}

impl crate::contract::bindings::passerelle::connector::records::Host for RecordsView<'_> {
    async fn upsert_appointments(
        &mut self,
        items: Vec<wit::Appointment>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self.records {
            Some(r) => r.upsert_appointments(items, self.scrubber),
            None => no_records(),
        }
    }

    async fn delete_appointments(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self.records {
            Some(r) => r.delete_appointments(ids),
            None => no_records(),
        }
    }

    async fn upsert_slots(
        &mut self,
        items: Vec<wit::Slot>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self.records {
            Some(r) => r.upsert_slots(items, self.scrubber),
            None => no_records(),
        }
    }

    async fn checkpoint(&mut self, cursor: String) -> wasmtime::Result<Result<(), String>> {
        let result = match self.records {
            Some(r) => r.checkpoint(cursor, self.scrubber).await,
            None => no_records(),
        };
        self.log.flush(self.scrubber);
        result
    }

    async fn on_drift(&mut self) -> wasmtime::Result<wit::DriftPolicy> {
        Ok(match self.records {
            Some(r) => r.drift_policy(),
            None => wit::DriftPolicy::Fail,
        })
    }

    async fn quarantine(
        &mut self,
        item: wit::QuarantinedItem,
    ) -> wasmtime::Result<Result<(), String>> {
        match self.records {
            Some(r) => r.quarantine(item, self.scrubber),
            None => no_records(),
        }
    }
}

pub fn status_text(s: wit::AppointmentStatus) -> &'static str {
    match s {
        wit::AppointmentStatus::Booked => "booked",
        wit::AppointmentStatus::Confirmed => "confirmed",
        wit::AppointmentStatus::Cancelled => "cancelled",
        wit::AppointmentStatus::NoShow => "no-show",
        wit::AppointmentStatus::Completed => "completed",
    }
}
