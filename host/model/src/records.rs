//! What connectors emit, as the host validated it and the store keeps it: appointments
//! (with their patients), slots, quarantined items, the scope the host stamps on them, and
//! what a commit changed.

use serde::{Deserialize, Serialize};

/// A validated patient, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PatientRecord {
    pub external_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A validated appointment, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppointmentRecord {
    pub external_id: String,
    pub starts_at: String,
    #[serde(skip)]
    pub starts_at_ms: i64,
    pub ends_at: Option<String>,
    pub status: String,
    pub practitioner: Option<String>,
    pub visit_motive: Option<String>,
    pub patient: Option<PatientRecord>,
    pub platform_updated_at: Option<String>,
}

/// A validated slot, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlotRecord {
    pub external_id: String,
    pub starts_at: String,
    #[serde(skip)]
    pub starts_at_ms: i64,
    pub ends_at: Option<String>,
    pub practitioner: Option<String>,
    pub visit_motive: Option<String>,
    pub place: Option<String>,
}

/// One buffered write, in emission order.
#[derive(Debug, Clone)]
pub enum Pending {
    Appointment(AppointmentRecord),
    DeleteAppointment(String),
    Slot(SlotRecord),
    /// An item the connector set aside (policy `quarantine`).
    Quarantine(QuarantineRecord),
}

impl Pending {
    /// About how much host memory this record takes while it waits for a checkpoint
    /// (its own size and its text), for the run's `pending_records_mib` budget.
    pub fn approx_bytes(&self) -> u64 {
        let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        let text = match self {
            Pending::Appointment(a) => {
                a.external_id.len()
                    + a.starts_at.len()
                    + opt(&a.ends_at)
                    + a.status.len()
                    + opt(&a.practitioner)
                    + opt(&a.visit_motive)
                    + opt(&a.platform_updated_at)
                    + a.patient.as_ref().map_or(0, |p| {
                        std::mem::size_of::<PatientRecord>()
                            + opt(&p.external_id)
                            + p.first_name.len()
                            + p.last_name.len()
                            + opt(&p.birth_date)
                            + opt(&p.phone)
                            + opt(&p.email)
                    })
            }
            Pending::DeleteAppointment(id) => id.len(),
            Pending::Slot(s) => {
                s.external_id.len()
                    + s.starts_at.len()
                    + opt(&s.ends_at)
                    + opt(&s.practitioner)
                    + opt(&s.visit_motive)
                    + opt(&s.place)
            }
            Pending::Quarantine(q) => {
                q.item.len()
                    + q.drift.endpoint.len()
                    + q.drift.path.len()
                    + q.drift.expected.len()
                    + q.drift.found.len()
            }
        };
        (std::mem::size_of::<Pending>() + text) as u64
    }
}

/// An item set aside: where it failed, and the item as received.
#[derive(Debug, Clone)]
pub struct QuarantineRecord {
    pub drift: crate::run::DriftReport,
    pub item: String,
}

/// Whose records these are. Stamped by the host, never by the connector.
#[derive(Debug, Clone)]
pub struct Scope {
    pub connector: String,
    pub practice_id: String,
    pub account_id: String,
    pub run_id: i64,
    /// The content hash of the connector version running.
    pub version_sha256: String,
    /// The account's stored slots (external ids) as its run's claim read them, if it
    /// did. Only the account's one running run writes them, so the last commit knows
    /// which the run no longer saw without reading them again. None: read there.
    pub stored_slots: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

/// What the last commit of a successful run does besides writing.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// The run's window, Unix milliseconds, start inclusive, end exclusive.
    pub window_ms: (i64, i64),
    /// Full sync: tombstone the window's appointments this run did not emit.
    pub tombstone: bool,
    /// Every slot the run emitted (external ids), at every checkpoint: the stored slots
    /// of the window not among them are removed (availability is a snapshot).
    pub seen_slots: std::collections::HashSet<String>,
}

/// What one commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitCounts {
    pub appointments_added: i64,
    pub appointments_changed: i64,
    pub appointments_deleted: i64,
    pub appointments_tombstoned: i64,
    pub slots_written: i64,
    pub slots_removed: i64,
    /// Items set aside (policy `quarantine`).
    pub quarantined: i64,
}

impl CommitCounts {
    /// Adds what this commit wrote to a run's counts.
    pub fn add_to(&self, run: &mut crate::run::RunCounts) {
        run.appointments_added += self.appointments_added;
        run.appointments_changed += self.appointments_changed;
        run.appointments_deleted += self.appointments_deleted;
        run.appointments_tombstoned += self.appointments_tombstoned;
        run.slots_written += self.slots_written;
        run.slots_removed += self.slots_removed;
        run.quarantined += self.quarantined;
    }
}

/// A stored appointment, for reading back (CLI, export, tests).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredAppointment {
    pub practice_id: String,
    pub account_id: String,
    pub record: AppointmentRecord,
    pub deleted_reason: Option<String>,
    pub first_seen_run: i64,
    pub last_seen_run: i64,
}
