//! Maiia, as the simulator serves it (the shapes of ViteMaDose's recordings):
//! - `GET /api/pat-public/consultation-reason-hcd?rootCenterId=&limit=&page=&size=`:
//!   the centre's consultation reasons, paged (`{items, total}`); a motive closed to
//!   new patients is a reason limited to the centre's known patients;
//! - `GET /api/pat-public/availabilities?centerId=&consultationReasonName=&from=&to=&page=&size=`:
//!   the reason's free times between two instants (UTC), paged.
//!
//! Maiia's ids are 24 hexadecimal digits: a centre is its account's profile id, a
//! practitioner its agenda's id, a reason its motive's id, written that way.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::world::{Account, Agenda, Motive, Platform, World};
use crate::{failure, path_and_query, stable_id, ExpectedSlot, Failure, Simulator};

const PLATFORM: &str = "maiia";
/// Largest page.
pub const MAX_SIZE: usize = 100;

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/api/pat-public/consultation-reason-hcd", get(reasons))
        .route("/api/pat-public/availabilities", get(availabilities))
}

/// Maiia's form of an id.
pub fn hex_id(n: u64) -> String {
    format!("{n:024x}")
}

pub fn settings(account: &Account) -> (crate::Settings, crate::Settings) {
    (vec![("center", hex_id(account.profile_id))], vec![])
}

/// A bookable time as Maiia publishes it: start and end in UTC, the practitioner by
/// id, the reason; no place.
pub fn publish(
    _account: &Account,
    agenda: &Agenda,
    motive: &Motive,
    t: &DateTime<Tz>,
) -> ExpectedSlot {
    let utc = |t: DateTime<Tz>| t.with_timezone(&Utc).fixed_offset().to_rfc3339();
    ExpectedSlot {
        starts_at: utc(*t),
        ends_at: Some(utc(*t + Duration::minutes(i64::from(motive.duration_min)))),
        practitioner: hex_id(agenda.id),
        visit_motive: motive.name.clone(),
        place: String::new(),
    }
}

fn maiia_time(t: &DateTime<Tz>) -> String {
    t.with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn center<'w>(world: &'w World, id: Option<&String>) -> Result<&'w Account, Failure> {
    let id = id.ok_or_else(|| failure(StatusCode::BAD_REQUEST, "centre id required"))?;
    world
        .on(Platform::Maiia)
        .find(|a| &hex_id(a.profile_id) == id)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown centre"))
}

/// `{items, total}` for page `page` of `size`.
fn page(q: &BTreeMap<String, String>, items: Vec<Value>) -> Result<Value, Failure> {
    let number = |key: &str, default: usize| {
        q.get(key).map_or(Ok(default), |v| {
            v.parse::<usize>()
                .map_err(|_| failure(StatusCode::BAD_REQUEST, format!("{key} must be a number")))
        })
    };
    let (page, size) = (number("page", 0)?, number("size", 50)?);
    if size == 0 || size > MAX_SIZE {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            format!("size must be 1 to {MAX_SIZE}"),
        ));
    }
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip(page * size).take(size).collect();
    Ok(json!({ "items": items, "total": total }))
}

async fn reasons(
    State(sim): State<Simulator>,
    Query(q): Query<BTreeMap<String, String>>,
    uri: Uri,
) -> Response {
    sim.respond(PLATFORM, "consultation-reasons", path_and_query(&uri), |world| {
        let account = center(world, q.get("rootCenterId"))?;
        let items = account
            .motives
            .iter()
            .enumerate()
            .map(|(i, m)| {
                json!({
                    "id": hex_id(m.id),
                    "name": m.name,
                    "position": i,
                    "consultationType": "PHYSICAL",
                    "patientLimitation": if m.allow_new_patients { "PUBLIC" } else { "KNOWN_PATIENTS" },
                    "allowAvailabilitiesXHoursBefore": 1008,
                    "injectionType": null,
                    "nextAppointmentDelayInDays": null,
                })
            })
            .collect();
        page(&q, items)
    })
    .await
}

async fn availabilities(
    State(sim): State<Simulator>,
    Query(q): Query<BTreeMap<String, String>>,
    uri: Uri,
) -> Response {
    sim.respond(PLATFORM, "availabilities", path_and_query(&uri), |world| {
        availabilities_doc(world, &q)
    })
    .await
}

fn availabilities_doc(world: &World, q: &BTreeMap<String, String>) -> Result<Value, Failure> {
    let account = center(world, q.get("centerId"))?;
    let instant = |key: &str| {
        q.get(key)
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| failure(StatusCode::BAD_REQUEST, format!("{key} must be an instant")))
    };
    let (from, to) = (instant("from")?, instant("to")?);
    let name = q
        .get("consultationReasonName")
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "consultationReasonName required"))?;
    let (first, end) = world.availability_days();
    let mut times: Vec<(DateTime<Tz>, &Agenda, &Motive)> = Vec::new();
    for motive in account.motives.iter().filter(|m| &m.name == name) {
        for agenda in &account.agendas {
            let mut day = first;
            while day < end {
                for t in world.slots_on(account, agenda, motive, day) {
                    let utc = t.with_timezone(&Utc);
                    if utc >= from && utc < to {
                        times.push((t, agenda, motive));
                    }
                }
                day += Duration::days(1);
            }
        }
    }
    times.sort_by_key(|(t, a, _)| (*t, a.id));
    let items = times
        .into_iter()
        .map(|(t, agenda, motive)| {
            let id = stable_id(&[
                account.profile_id,
                agenda.id,
                motive.id,
                t.timestamp() as u64,
            ]);
            json!({
                "id": hex_id(id >> 8),
                "practitionerId": hex_id(agenda.id),
                "centerId": hex_id(account.profile_id),
                "timeSlotId": hex_id(id >> 12),
                "consultationReasonId": hex_id(motive.id),
                "creationDate": maiia_time(&world.epoch.with_timezone(&chrono_tz::Europe::Paris)),
                "startDateTime": maiia_time(&t),
                "endDateTime": maiia_time(&(t + Duration::minutes(i64::from(motive.duration_min)))),
                "percentageNewPatient": 50.0,
                "usedResource": [],
                "substitute": {},
            })
        })
        .collect();
    page(q, items)
}
