//! Emitting records and checkpoints, with host refusals turned into `internal` errors.

use crate::bindings::passerelle::connector::records;
use crate::{Appointment, Slot, SyncError};

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
