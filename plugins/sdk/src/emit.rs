//! Emitting records and checkpoints, with host refusals turned into `internal` errors;
//! the run's drift policy and setting items aside (quarantine).

use crate::bindings::passerelle::connector::records;
use crate::{Appointment, Drift, DriftPolicy, Slot, SyncError};

fn refused(what: &str, reason: String) -> SyncError {
    SyncError::Internal(format!("host refused {what}: {reason}"))
}

/// Upserts appointments (buffered by the host until the next checkpoint).
pub fn appointments(items: &[Appointment]) -> Result<(), SyncError> {
    records::upsert_appointments(items).map_err(|e| refused("appointments", e))
}

/// Marks appointments the platform reports deleted.
pub fn deleted_appointments(external_ids: &[String]) -> Result<(), SyncError> {
    records::delete_appointments(external_ids).map_err(|e| refused("deletions", e))
}

/// Upserts availability slots.
pub fn slots(items: &[Slot]) -> Result<(), SyncError> {
    records::upsert_slots(items).map_err(|e| refused("slots", e))
}

/// Commits everything emitted so far together with `cursor`.
pub fn checkpoint(cursor: &str) -> Result<(), SyncError> {
    records::checkpoint(cursor).map_err(|e| refused("checkpoint", e))
}

/// The operator's drift policy for this run (`fail` on contract 0.1.0).
pub fn drift_policy() -> DriftPolicy {
    #[cfg(not(feature = "contract-0-1-0"))]
    {
        records::on_drift()
    }
    #[cfg(feature = "contract-0-1-0")]
    {
        DriftPolicy::Fail
    }
}

/// Sets an item that does not parse aside for review (policy `quarantine`), committed
/// with the next checkpoint. `item` is the element as received; the host stores it in
/// its database only.
pub fn quarantine(drift: Drift, item: &serde_json::Value) -> Result<(), SyncError> {
    #[cfg(not(feature = "contract-0-1-0"))]
    {
        records::quarantine(&crate::QuarantinedItem {
            drift,
            item: item.to_string(),
        })
        .map_err(|e| refused("a quarantined item", e))
    }
    #[cfg(feature = "contract-0-1-0")]
    {
        let _ = item;
        Err(SyncError::SchemaDrift(drift))
    }
}
