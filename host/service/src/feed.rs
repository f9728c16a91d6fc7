//! The change feed as callers read it: changes after a sequence number, in commit
//! order, each with its record (patient fields only for a principal holding
//! `patients:read` who asks, audited; initials otherwise); a reader behind retention is
//! told so ([`ServiceError::Gone`]), never silently moved on. Retention itself
//! ([`Passerelle::prune_feed`]) keeps what a subscription has yet to deliver.

use serde::{Deserialize, Serialize};

use super::principal::{require, Scope};
use super::records::{slot_view, view, AppointmentView, SlotView};
use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::feed::{ChangeKind, ChangeOp, StoredChange};
use passerelle_model::records::{AppointmentRecord, SlotRecord, StoredAppointment};
use passerelle_store::feed::{ChangeFilter, FeedState};
use passerelle_store::pages::StoredSlot;

/// Query of `GET /v1/changes` and `passerelle changes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// The last sequence number the reader has (0 for the start of the feed).
    #[serde(default)]
    #[param(minimum = 0, maximum = 9007199254740991i64)]
    pub after: i64,
    /// 1 to 10,000; default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    /// Only this practice's changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice: Option<String>,
    /// Only this kind of record (`appointment`, `slot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ChangeKind>,
    /// Patients' names, birth dates, phones and e-mails (needs the `patients:read`
    /// scope; recorded in the audit trail). Otherwise initials only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub patients: bool,
}

/// One change: its number, what and how, and the record as written (`added`,
/// `changed`) — `appointment` or `slot` by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeView {
    pub seq: i64,
    pub kind: ChangeKind,
    pub op: ChangeOp,
    pub practice_id: String,
    pub account_id: String,
    pub platform: String,
    pub external_id: String,
    /// When it was committed (RFC 3339).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<AppointmentView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotView>,
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangePage {
    pub changes: Vec<ChangeView>,
    /// Pass as `after` next time: every change up to it that matches the query is in
    /// this page or an earlier one.
    pub next_after: i64,
    /// The feed's last sequence number when this page was read.
    pub head: i64,
    /// Whether changes past `next_after` were already there (read again at once).
    pub more: bool,
}

impl Passerelle {
    /// A page of the change feed.
    pub async fn changes(&self, q: &ChangeQuery) -> ServiceResult<ChangePage> {
        if let Some(p) = &q.practice {
            self.practice(p).await?;
        }
        if q.patients {
            require(Scope::PatientsRead, "showing patients")?;
        }
        // Appointments are health data: without `appointments:read` the feed is the
        // slots' (public availability) alone.
        let appointments = super::principal::current().allows(Scope::AppointmentsRead);
        if q.kind == Some(ChangeKind::Appointment) {
            require(Scope::AppointmentsRead, "reading appointment changes")?;
        }
        let limit = super::limit(q.limit, 500, 10_000)?;
        let kinds = match q.kind {
            Some(kind) => vec![kind],
            None if appointments => Vec::new(),
            None => vec![ChangeKind::Slot],
        };
        let filter = ChangeFilter {
            practices: q.practice.iter().cloned().collect(),
            kinds,
            through: None,
        };
        let (rows, next_after, head, more) = self.feed_page(q.after, limit, filter).await?;
        let read = rows
            .iter()
            .filter(|c| c.kind == ChangeKind::Appointment && c.record.is_some())
            .count();
        if read > 0 || q.patients {
            // Appointments are health data: every read is in the audit trail.
            self.audit(
                if q.patients {
                    "read.patients"
                } else {
                    "read.appointments"
                },
                q.practice.as_deref().unwrap_or("*"),
                serde_json::json!({"feed_after": q.after, "appointments": read}),
            )
            .await?;
        }
        Ok(ChangePage {
            changes: change_views(rows, q.patients)?,
            next_after,
            head,
            more,
        })
    }

    /// Up to `limit` changes after `after` matching `filter`, with the position to read
    /// from next, the head and whether more were there. [`ServiceError::Gone`] if
    /// retention removed changes the reader has not seen.
    pub(crate) async fn feed_page(
        &self,
        after: i64,
        limit: i64,
        mut filter: ChangeFilter,
    ) -> ServiceResult<(Vec<StoredChange>, i64, i64, bool)> {
        let state = self.store.feed_state().await?;
        position_within(after, state)?;
        filter.through = Some(state.head);
        let mut rows = self.store.changes_after(after, limit + 1, &filter).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_after = match rows.last() {
            Some(last) if more => last.seq,
            // Every matching change up to the head is in this page.
            _ => state.head,
        };
        Ok((rows, next_after, state.head, more))
    }

    /// Removes the changes older than `retention_days`, keeping what a live
    /// subscription has yet to deliver; the new `pruned_through`. Appointments deleted
    /// or tombstoned before the same cutoff keep only what
    /// [`super::records::forgotten`] keeps of their patient: a tombstone stays (a
    /// consumer may still ask about it), the patient's details do not.
    pub async fn prune_feed(&self, now_ms: i64, retention_days: u32) -> ServiceResult<i64> {
        let cutoff = now_ms - i64::from(retention_days) * 86_400_000;
        let keep_after = self.store.lowest_undelivered().await?;
        let pruned = self.store.prune_changes(cutoff, keep_after).await?;
        if let Some(before) = chrono::DateTime::from_timestamp_millis(cutoff) {
            let before = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let n = self
                .store
                .forget_deleted_patients(&before, super::records::forgotten)
                .await?;
            if n > 0 {
                tracing::info!(
                    appointments = n,
                    "deleted appointments' patients reduced to initials"
                );
            }
        }
        Ok(pruned)
    }
}

/// Whether a reader may start after `after`: not negative, not behind what retention
/// removed ([`ServiceError::Gone`]), not past the head (a conflict: another database?).
pub(crate) fn position_within(after: i64, state: FeedState) -> ServiceResult<()> {
    if after < 0 {
        return Err(ServiceError::invalid(
            "`after` is a sequence number, 0 or more",
        ));
    }
    if after < state.pruned_through {
        return Err(ServiceError::Gone(format!(
            "changes {} to {} were removed by retention (`feed.retention_days`) before this \
             reader got them: read the current state (appointments, slots), then follow the \
             feed from its head ({})",
            after + 1,
            state.pruned_through,
            state.head
        )));
    }
    if after > state.head {
        return Err(ServiceError::conflict(
            "ahead-of-feed",
            format!(
                "`after` ({after}) is past the feed's head ({}): is this the same database?",
                state.head
            ),
        ));
    }
    Ok(())
}

/// Changes as shown (patient fields only with `patients`).
pub(crate) fn change_views(
    rows: Vec<StoredChange>,
    patients: bool,
) -> ServiceResult<Vec<ChangeView>> {
    rows.into_iter()
        .map(|c| {
            let corrupt = |e: serde_json::Error| {
                ServiceError::Internal(anyhow::anyhow!(
                    "change {} holds an unreadable record: {e}",
                    c.seq
                ))
            };
            let mut appointment = None;
            let mut slot = None;
            match (c.kind, &c.record) {
                (ChangeKind::Appointment, Some(json)) => {
                    let record: AppointmentRecord = serde_json::from_str(json).map_err(corrupt)?;
                    appointment = Some(view(
                        StoredAppointment {
                            practice_id: c.practice_id.clone(),
                            account_id: c.account_id.clone(),
                            record,
                            deleted_reason: None,
                            first_seen_run: c.run_id,
                            last_seen_run: c.run_id,
                        },
                        patients,
                    ));
                }
                (ChangeKind::Slot, Some(json)) => {
                    let record: SlotRecord = serde_json::from_str(json).map_err(corrupt)?;
                    slot = Some(slot_view(StoredSlot {
                        practice_id: c.practice_id.clone(),
                        account_id: c.account_id.clone(),
                        connector: c.connector.clone(),
                        record,
                    }));
                }
                (_, None) => {}
            }
            Ok(ChangeView {
                seq: c.seq,
                kind: c.kind,
                op: c.op,
                practice_id: c.practice_id,
                account_id: c.account_id,
                platform: c.connector,
                external_id: c.external_id,
                at: c.created_at,
                appointment,
                slot,
            })
        })
        .collect()
}
