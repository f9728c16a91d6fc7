//! Ordoclic, as the simulator serves it (the shapes of ViteMaDose's recordings):
//! - `GET /v1/public/entities/profile/{slug}`: the entity, its public professionals
//!   (one per agenda) and `booking_settings` (`internal`, or `any`: phone only);
//! - `GET /v1/solar/entities/{entityId}/reasons`: the reasons, `canBookOnline` false
//!   for a motive closed to new patients;
//! - `POST /v1/solar/slots/availableSlots` with `{entityId, medicalStaffId, reasonId,
//!   dateStart, dateEnd}`: that professional's free times for that reason, in UTC with
//!   the Paris offset beside them in minutes, and `nextAvailableSlotDate` when there are
//!   none.
//!
//! Ordoclic's ids are UUIDs: an entity is its account's profile id, a professional its
//! agenda's id, a reason its motive's id, written that way.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Offset, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::world::{Account, Agenda, Motive, Platform, World};
use crate::{failure, path_and_query, stable_id, ExpectedSlot, Failure, Simulator};

const PLATFORM: &str = "ordoclic";

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/v1/public/entities/profile/{slug}", get(profile))
        .route("/v1/solar/entities/{entity}/reasons", get(reasons))
        .route("/v1/solar/slots/availableSlots", post(slots))
}

/// Ordoclic's form of an id.
pub fn uuid(n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n >> 32,
        (n >> 16) & 0xffff,
        n & 0xfff,
        (n >> 4) & 0xfff,
        n
    )
}

pub fn settings(account: &Account) -> (crate::Settings, crate::Settings) {
    (vec![("profile", account.centre.clone())], vec![])
}

/// The place Ordoclic names: the profile's name and town.
fn place(account: &Account) -> String {
    format!("{} ({})", account.place.name, account.place.city)
}

/// A bookable time as Ordoclic publishes it: start and end at the Paris offset (sent
/// in minutes beside the UTC time), the professional, the reason, the profile.
pub fn publish(
    account: &Account,
    agenda: &Agenda,
    motive: &Motive,
    t: &DateTime<Tz>,
) -> ExpectedSlot {
    ExpectedSlot::timed(t, motive, agenda.practitioner.clone(), place(account))
}

fn utc(t: &DateTime<Tz>) -> String {
    t.with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn offset_minutes(t: &DateTime<Tz>) -> i32 {
    t.offset().fix().local_minus_utc() / 60
}

fn by_entity<'w>(world: &'w World, entity: &str) -> Result<&'w Account, Failure> {
    world
        .on(Platform::Ordoclic)
        .find(|a| uuid(a.profile_id) == entity)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown entity"))
}

async fn profile(State(sim): State<Simulator>, Path(slug): Path<String>, uri: Uri) -> Response {
    sim.respond(PLATFORM, "profile", path_and_query(&uri), |world| {
        let a = world
            .account_by_centre(Platform::Ordoclic, &slug)
            .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown profile"))?;
        let professionals: Vec<Value> = a
            .agendas
            .iter()
            .map(|g| {
                let (first, last) = g.practitioner.trim_start_matches("Dr ").split_once(' ').unwrap_or(("", &g.practitioner));
                json!({"id": uuid(g.id), "fullName": g.practitioner, "firstName": first,
                       "lastName": last, "title": "Madame, Monsieur", "job": "Pharmacien"})
            })
            .collect();
        Ok(json!({
            "profileSlug": a.centre,
            "entityId": uuid(a.profile_id),
            "name": a.place.name,
            "type": "Pharmacie",
            "phone": "+33123456789",
            "address": a.place.address,
            "city": a.place.city,
            "zip": a.place.zipcode,
            "publicProfessionals": professionals,
            "attributeValues": [
                {"label": "introduction", "value": "Prenez rendez-vous en ligne."},
                {"label": "keywords", "value": ["Rendez-Vous"]},
                {"label": "booking_settings", "value": {"option": if a.phone_only { "any" } else { "internal" }}},
            ],
        }))
    })
    .await
}

async fn reasons(State(sim): State<Simulator>, Path(entity): Path<String>, uri: Uri) -> Response {
    sim.respond(PLATFORM, "reasons", path_and_query(&uri), |world| {
        let a = by_entity(world, &entity)?;
        let reasons: Vec<Value> = a
            .motives
            .iter()
            .map(|m| {
                json!({"id": uuid(m.id), "name": m.name, "canBookOnline": m.allow_new_patients,
                       "duration": m.duration_min, "entityId": uuid(a.profile_id),
                       "isAcceptNewPatient": m.allow_new_patients, "reasonTypeId": 1})
            })
            .collect();
        Ok(json!({ "reasons": reasons, "limitedMode": false }))
    })
    .await
}

/// What `availableSlots` is asked.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlotQuery {
    entity_id: String,
    medical_staff_id: String,
    reason_id: String,
    date_start: DateTime<Utc>,
    date_end: DateTime<Utc>,
}

async fn slots(
    State(sim): State<Simulator>,
    uri: Uri,
    body: Result<Json<SlotQuery>, axum::extract::rejection::JsonRejection>,
) -> Response {
    sim.respond(PLATFORM, "availableSlots", path_and_query(&uri), |world| {
        let Json(q) = body.map_err(|e| failure(StatusCode::BAD_REQUEST, e.body_text()))?;
        slots_doc(world, &q)
    })
    .await
}

fn slots_doc(world: &World, q: &SlotQuery) -> Result<Value, Failure> {
    let a = by_entity(world, &q.entity_id)?;
    let agenda = a
        .agendas
        .iter()
        .find(|g| uuid(g.id) == q.medical_staff_id)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown professional"))?;
    let motive = a
        .motives
        .iter()
        .find(|m| uuid(m.id) == q.reason_id)
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown reason"))?;
    let (first, end) = world.availability_days();
    let mut times = Vec::new();
    let mut next = None;
    let mut day = first;
    while day < end {
        for t in world.slots_on(a, agenda, motive, day) {
            let u = t.with_timezone(&Utc);
            if u >= q.date_start && u < q.date_end {
                times.push(t);
            } else if u >= q.date_end && next.is_none() {
                next = Some(t);
            }
        }
        day += Duration::days(1);
    }
    let slots: Vec<Value> = times
        .iter()
        .map(|t| {
            let stop = *t + Duration::minutes(i64::from(motive.duration_min));
            json!({
                "id": uuid(stable_id(&[a.profile_id, agenda.id, motive.id, t.timestamp() as u64])),
                "isRepeated": false,
                "timeStart": utc(t),
                "timeStartUtcOffset": offset_minutes(t),
                "timeEnd": utc(&stop),
                "timeEndUtcOffset": offset_minutes(&stop),
                "tzId": "Europe/Paris",
                "reasonIDs": [uuid(motive.id)],
                "medicalStaffID": uuid(agenda.id),
            })
        })
        .collect();
    let next = if slots.is_empty() {
        next.map(|t| utc(&t))
    } else {
        None
    };
    Ok(json!({ "slots": slots, "nextAvailableSlotDate": next }))
}
