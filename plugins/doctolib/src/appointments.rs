//! Practice appointments through the practice API (`GET /api/v1/profiles/{id}/appointments`,
//! bearer token from the account's `api-token` secret; see docs/simulator.md).
//!
//! Incremental runs ask for what changed since the cursor minus [`OVERLAP_MINUTES`]
//! (late writes land a little in the past); full runs re-read the whole window so the
//! host can tombstone what vanished. Pages come ordered by `(updated_at, id)` and are
//! read by key, not by number: each next page starts after the last item of the one
//! before (`after_updated_at`, `after_id`). An appointment changed on the platform
//! during the run moves to the end of the order; by page number the items behind it
//! would shift down one and the one at the page boundary would be skipped for good,
//! while by key nothing is skipped and the changed one is read again. After each page
//! the connector checkpoints the newest `updated_at` seen: a failed run resumes from
//! there and re-reads nothing it already committed but the overlap.

use passerelle_sdk::http::{encode, get};
use passerelle_sdk::time::chrono::{Duration, SecondsFormat, Utc};
use passerelle_sdk::time::{Timestamp, Window};
use passerelle_sdk::{
    drift, emit, info, warn, Appointment, AppointmentStatus, Patient, SyncError, SyncMode,
    SyncRequest,
};

use crate::api::{self, AppointmentPage};
use crate::PARTNERS;

/// How far before the cursor an incremental run starts reading.
pub const OVERLAP_MINUTES: i64 = 10;
/// Appointments per page (the API's maximum).
const PER_PAGE: u32 = 100;
/// Cursor format version prefix.
const CURSOR_PREFIX: &str = "v1:";

/// What one appointments pass did.
#[derive(Debug, Default)]
pub struct Found {
    pub appointments: usize,
    pub pages: u32,
    /// The cursor to hand back: newest `updated_at` committed.
    pub cursor: Option<String>,
    /// Items set aside under the `quarantine` drift policy.
    pub quarantined: usize,
}

const ENDPOINT: &str = "GET /api/v1/profiles/{id}/appointments";

fn encode_cursor(t: &Timestamp) -> String {
    format!(
        "{CURSOR_PREFIX}{}",
        t.0.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

fn decode_cursor(cursor: &str) -> Option<Timestamp> {
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(Timestamp::parse)
}

/// Reads the account's appointments and emits them, checkpointing after every page.
pub fn sync(req: &SyncRequest, profile_id: &str, window: &Window) -> Result<Found, SyncError> {
    let mut newest = match (req.mode, req.cursor.as_deref()) {
        (SyncMode::Full, _) | (_, None) => None,
        (SyncMode::Incremental, Some(c)) => {
            let t = decode_cursor(c);
            if t.is_none() {
                warn!("unreadable cursor from an earlier version; re-reading the whole window");
            }
            t
        }
    };
    let since =
        newest.map(|t| Timestamp((t.0 - Duration::minutes(OVERLAP_MINUTES)).fixed_offset()));
    let mut found = Found {
        cursor: newest.as_ref().map(encode_cursor),
        ..Found::default()
    };
    // The key of the last item read: the next page starts after it.
    let mut after: Option<(String, String)> = None;
    loop {
        let mut request = get(format!(
            "{PARTNERS}/api/v1/profiles/{}/appointments",
            encode(profile_id)
        ))
        .query("start", &window.start.to_rfc3339())
        .query("end", &window.end.to_rfc3339())
        .query("per_page", &PER_PAGE.to_string());
        if let Some(since) = &since {
            request = request.query("updated_since", &since.to_rfc3339());
        }
        if let Some((updated_at, id)) = &after {
            request = request
                .query("after_updated_at", updated_at)
                .query("after_id", id);
        }
        let body: AppointmentPage = request.bearer("api-token").endpoint(ENDPOINT).json()?;
        let page_items = body.appointments.len();
        if let Some(last) = body.appointments.last() {
            after = Some(page_key(last, page_items - 1)?);
        }
        let items: Vec<api::Appointment> =
            drift::items(ENDPOINT, "$.appointments", body.appointments)?;
        found.pages += 1;
        found.quarantined += page_items - items.len();
        let batch: Vec<Appointment> = items.iter().map(appointment).collect();
        if let Some(t) = items.iter().map(|a| a.updated_at).max() {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
        if !batch.is_empty() {
            emit::appointments(&batch)?;
        }
        found.appointments += batch.len();
        if let Some(n) = &newest {
            let cursor = encode_cursor(n);
            emit::checkpoint(&cursor)?;
            found.cursor = Some(cursor);
        }
        if body.pagination.page >= body.pagination.total_pages || page_items == 0 {
            break;
        }
    }
    if found.quarantined > 0 {
        warn!(
            "{} unreadable appointments set aside for review (drift policy: quarantine)",
            found.quarantined
        );
    }
    info!(
        "read {} appointments in {} pages ({})",
        found.appointments,
        found.pages,
        if since.is_some() {
            "changes since the cursor"
        } else {
            "whole window"
        }
    );
    Ok(found)
}

/// The `(updated_at, id)` key of a page's last item, as sent (read from the raw item: an
/// item set aside as unreadable still orders the pages). Without it the next page cannot
/// be asked for: drift.
fn page_key(
    item: &passerelle_sdk::serde_json::Value,
    index: usize,
) -> Result<(String, String), SyncError> {
    let field = |name: &str| -> Result<String, SyncError> {
        match item.get(name) {
            Some(passerelle_sdk::serde_json::Value::String(s)) => Ok(s.clone()),
            Some(passerelle_sdk::serde_json::Value::Number(n)) => Ok(n.to_string()),
            other => Err(drift::report(
                ENDPOINT,
                &format!("$.appointments[{index}].{name}"),
                "a string or a number",
                &drift::kind(other),
            )),
        }
    };
    Ok((field("updated_at")?, field("id")?))
}

fn appointment(a: &api::Appointment) -> Appointment {
    Appointment {
        external_id: a.id.clone(),
        starts_at: a.start_date.to_rfc3339(),
        ends_at: a.end_date.map(|e| e.to_rfc3339()),
        status: match a.status {
            api::Status::Booked => AppointmentStatus::Booked,
            api::Status::Confirmed => AppointmentStatus::Confirmed,
            api::Status::Cancelled => AppointmentStatus::Cancelled,
            api::Status::NoShow => AppointmentStatus::NoShow,
            api::Status::Completed => AppointmentStatus::Completed,
        },
        // The `silently-wrong` test build loses it (shadow replay must notice).
        practitioner: if cfg!(feature = "silently-wrong") {
            None
        } else {
            a.practitioner_name.clone()
        },
        visit_motive: a.visit_motive_name.clone(),
        patient: a.patient.as_ref().map(|p| Patient {
            external_id: p.id.clone(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            birth_date: p.birthdate.map(|d| d.format("%Y-%m-%d").to_string()),
            phone: p.phone_number.clone(),
            email: p.email.clone(),
        }),
        updated_at: Some(a.updated_at.to_rfc3339()),
    }
}
