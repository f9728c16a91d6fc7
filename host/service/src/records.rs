//! Reading back what was synced, as the CLI and the API show it: appointments (patient
//! fields only for a principal holding `patients:read` who asks for them, recorded in
//! the audit trail; initials otherwise) and slots, filtered, in a stable order
//! (start, account, external id), a page at a time from a position (`after`).

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::principal::{require, Scope};
use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::records::{PatientRecord, StoredAppointment};
use passerelle_store::pages::{RecordFilter, StoredSlot};

/// Filters of `GET /v1/practices/{id}/appointments` and `passerelle appointments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppointmentQuery {
    /// Only this account of the practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Appointments starting at or after this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Appointments starting before this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `booked`, `confirmed`, `cancelled`, `no-show`, `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Include deleted and tombstoned appointments.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Patients' names, birth dates, phones and e-mails (needs the `patients:read`
    /// scope; recorded in the audit trail). Otherwise initials only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub patients: bool,
    /// Start after this position: the `next` of the previous page,
    /// `{start in Unix ms}:{account id}:{external id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^-?[0-9]{1,18}:[^:]*:.*$")]
    pub after: Option<String>,
    /// 1 to 10,000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// Filters of `GET /v1/slots` and `passerelle slots`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The connector (platform) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Slots starting at or after this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Slots starting before this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Start after this position: the `next` of the previous page,
    /// `{start in Unix ms}:{account id}:{external id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^-?[0-9]{1,18}:[^:]*:.*$")]
    pub after: Option<String>,
    /// 1 to 10,000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// A patient as shown: initials always; the rest only when asked for with `patients:read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PatientView {
    pub initials: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One stored appointment as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppointmentView {
    pub practice_id: String,
    pub account_id: String,
    pub external_id: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub status: String,
    pub practitioner: Option<String>,
    pub visit_motive: Option<String>,
    pub platform_updated_at: Option<String>,
    /// Why it is no longer current (`deleted`, `tombstoned`), if it is not.
    pub deleted_reason: Option<String>,
    pub patient: Option<PatientView>,
}

/// A page of appointments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppointmentPage {
    pub items: Vec<AppointmentView>,
    /// Pass as `after` for the next page (the last item's position); absent on the
    /// last page.
    pub next: Option<String>,
}

/// One stored slot as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlotView {
    pub practice_id: String,
    pub account_id: String,
    pub platform: String,
    pub external_id: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub practitioner: Option<String>,
    pub visit_motive: Option<String>,
    pub place: Option<String>,
}

/// A page of slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlotPage {
    pub items: Vec<SlotView>,
    /// Pass as `after` for the next page (the last item's position); absent on the
    /// last page.
    pub next: Option<String>,
}

/// What the change feed keeps of a patient once their account (or practice) is
/// deleted: the initials' letters, nothing else (no platform id, birth date, phone or
/// e-mail). A replay shows the same initials as before.
pub fn forgotten(p: PatientRecord) -> PatientRecord {
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    PatientRecord {
        external_id: None,
        first_name: first(&p.first_name),
        last_name: first(&p.last_name),
        birth_date: None,
        phone: None,
        email: None,
    }
}

/// The initials shown for a patient.
pub fn initials(first: &str, last: &str) -> String {
    format!(
        "{}. {}.",
        first.chars().next().unwrap_or('?'),
        last.chars().next().unwrap_or('?')
    )
}

fn instant(field: &str, text: &Option<String>) -> ServiceResult<Option<i64>> {
    text.as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|_| ServiceError::invalid(format!("`{field}` is not an RFC 3339 instant")))
        })
        .transpose()
}

/// Cuts `rows` (fetched one past `limit`) to the page; the position after its last row
/// if there is more.
fn next_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (i64, &String, &String),
) -> Option<String> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit as usize);
    let (ms, account, external) = key(rows.last().expect("a full page"));
    Some(format!("{ms}:{account}:{external}"))
}

/// A position `{start ms}:{account id}:{external id}` (account ids hold no `:`; an
/// external id may).
fn after(text: &Option<String>) -> ServiceResult<Option<(i64, String, String)>> {
    text.as_deref()
        .map(|t| {
            let mut parts = t.splitn(3, ':');
            let ms = parts.next().and_then(|m| m.parse::<i64>().ok());
            match (ms, parts.next(), parts.next()) {
                (Some(ms), Some(account), Some(external)) => {
                    Ok((ms, account.to_string(), external.to_string()))
                }
                _ => Err(ServiceError::invalid(
                    "`after` is a position `{start ms}:{account id}:{external id}` (a page's `next`)",
                )),
            }
        })
        .transpose()
}

impl Passerelle {
    /// A page of a practice's appointments.
    pub async fn appointments_page(
        &self,
        practice_id: &str,
        q: &AppointmentQuery,
    ) -> ServiceResult<AppointmentPage> {
        self.practice(practice_id).await?;
        if let Some(a) = &q.account {
            let account = self.account(a).await?;
            if account.practice_id != practice_id {
                return Err(ServiceError::not_found(format!(
                    "account `{a}` is not an account of practice `{practice_id}`"
                )));
            }
        }
        require(Scope::AppointmentsRead, "reading appointments")?;
        if q.patients {
            require(Scope::PatientsRead, "showing patients")?;
        }
        let limit = super::limit(q.limit, 100, 10_000)?;
        let filter = RecordFilter {
            practice: Some(practice_id.to_string()),
            account: q.account.clone(),
            from_ms: instant("from", &q.from)?,
            to_ms: instant("to", &q.to)?,
            status: q.status.clone(),
            all: q.all,
            after: after(&q.after)?,
            limit: limit + 1,
            ..RecordFilter::default()
        };
        let mut rows = self.store.appointments_page(&filter).await?;
        let next = next_page(&mut rows, limit, |r| {
            (r.record.starts_at_ms, &r.account_id, &r.record.external_id)
        });
        // Appointments are health data: every read is in the audit trail.
        self.audit(
            if q.patients {
                "read.patients"
            } else {
                "read.appointments"
            },
            practice_id,
            serde_json::json!({"account": q.account, "appointments": rows.len()}),
        )
        .await?;
        Ok(AppointmentPage {
            items: rows.into_iter().map(|r| view(r, q.patients)).collect(),
            next,
        })
    }

    /// A page of slots.
    pub async fn slots_page(&self, q: &SlotQuery) -> ServiceResult<SlotPage> {
        if let Some(p) = &q.practice {
            self.practice(p).await?;
        }
        if let Some(a) = &q.account {
            self.account(a).await?;
        }
        let limit = super::limit(q.limit, 100, 10_000)?;
        let filter = RecordFilter {
            practice: q.practice.clone(),
            account: q.account.clone(),
            connector: q.platform.clone(),
            from_ms: instant("from", &q.from)?,
            to_ms: instant("to", &q.to)?,
            after: after(&q.after)?,
            limit: limit + 1,
            ..RecordFilter::default()
        };
        let mut rows = self.store.slots_page(&filter).await?;
        let next = next_page(&mut rows, limit, |r| {
            (r.record.starts_at_ms, &r.account_id, &r.record.external_id)
        });
        Ok(SlotPage {
            items: rows.into_iter().map(slot_view).collect(),
            next,
        })
    }
}

pub fn view(s: StoredAppointment, patients: bool) -> AppointmentView {
    let r = s.record;
    AppointmentView {
        practice_id: s.practice_id,
        account_id: s.account_id,
        external_id: r.external_id,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        status: r.status,
        practitioner: r.practitioner,
        visit_motive: r.visit_motive,
        platform_updated_at: r.platform_updated_at,
        deleted_reason: s.deleted_reason,
        patient: r.patient.map(|p| {
            let initials = initials(&p.first_name, &p.last_name);
            if patients {
                PatientView {
                    initials,
                    external_id: p.external_id,
                    first_name: Some(p.first_name),
                    last_name: Some(p.last_name),
                    birth_date: p.birth_date,
                    phone: p.phone,
                    email: p.email,
                }
            } else {
                PatientView {
                    initials,
                    external_id: None,
                    first_name: None,
                    last_name: None,
                    birth_date: None,
                    phone: None,
                    email: None,
                }
            }
        }),
    }
}

pub fn slot_view(s: StoredSlot) -> SlotView {
    let r = s.record;
    SlotView {
        practice_id: s.practice_id,
        account_id: s.account_id,
        platform: s.connector,
        external_id: r.external_id,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        practitioner: r.practitioner,
        visit_motive: r.visit_motive,
        place: r.place,
    }
}
