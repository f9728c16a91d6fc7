//! Keldoc, as the simulator serves it (the shapes of ViteMaDose's recordings):
//! - `GET /api/patients/v2/clinics/{clinic}/specialties/{specialty}/cabinets`: the
//!   clinic's cabinets (the account's, and an annex that is not it);
//! - `GET …/cabinets/{cabinet}/motive_categories`: one category per motive, with the
//!   agendas that take it;
//! - `GET /api/patients/v2/timetables/{motive}?from=&to=&agenda_ids[]=`: the free times
//!   of those days (`availabilities`), else the next one (`date`), else none (an empty
//!   `availabilities`); a motive
//!   closed to new patients answers its phone number (bookable by phone only).
//!
//! A clinic is an account's profile id, its cabinet the account's place, the specialty
//! always 144.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDate};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::world::{Account, Agenda, Motive, Platform, World};
use crate::{failure, path_and_query, ExpectedSlot, Failure, Simulator};

const PLATFORM: &str = "keldoc";
/// The specialty every simulated clinic is listed under.
pub const SPECIALTY: u64 = 144;
/// Most days one timetable request may cover.
pub const MAX_DAYS: i64 = 14;

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route(
            "/api/patients/v2/clinics/{clinic}/specialties/{specialty}/cabinets",
            get(cabinets),
        )
        .route(
            "/api/patients/v2/clinics/{clinic}/specialties/{specialty}/cabinets/{cabinet}/motive_categories",
            get(motive_categories),
        )
        .route("/api/patients/v2/timetables/{motive}", get(timetable))
}

/// The account's settings (no secret: public availability only).
pub fn settings(account: &Account) -> (crate::Settings, crate::Settings) {
    (
        vec![
            ("clinic", account.profile_id.to_string()),
            ("specialty", SPECIALTY.to_string()),
            ("cabinet", account.place.practice_id.to_string()),
        ],
        vec![],
    )
}

/// A bookable time as Keldoc publishes it: start and end with their offset, the
/// agenda's name, the motive, the cabinet.
pub fn publish(
    account: &Account,
    agenda: &Agenda,
    motive: &Motive,
    t: &DateTime<Tz>,
) -> ExpectedSlot {
    ExpectedSlot::timed(
        t,
        motive,
        agenda.practitioner.clone(),
        account.place.name.clone(),
    )
}

fn end(t: &DateTime<Tz>, motive: &Motive) -> DateTime<Tz> {
    *t + Duration::minutes(i64::from(motive.duration_min))
}

fn keldoc_time(t: &DateTime<Tz>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

fn clinic<'w>(world: &'w World, clinic: &str, specialty: &str) -> Result<&'w Account, Failure> {
    if specialty != SPECIALTY.to_string() {
        return Err(failure(StatusCode::NOT_FOUND, "unknown specialty"));
    }
    clinic
        .parse()
        .ok()
        .and_then(|id| world.account_by_profile(Platform::Keldoc, id))
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown clinic"))
}

async fn cabinets(
    State(sim): State<Simulator>,
    Path((clinic_id, specialty)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    sim.respond(PLATFORM, "cabinets", path_and_query(&uri), |world| {
        let account = clinic(world, &clinic_id, &specialty)?;
        let place = &account.place;
        let row = |id: u64, name: &str| {
            json!({"id": id, "name": name, "location": place.city, "img": null,
                   "latitude": 47.9, "longitude": -3.4})
        };
        Ok(json!([
            row(
                place.practice_id + 500_000,
                &format!("Annexe — {}", place.city)
            ),
            row(place.practice_id, &place.name),
        ]))
    })
    .await
}

async fn motive_categories(
    State(sim): State<Simulator>,
    Path((clinic_id, specialty, cabinet)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    sim.respond(
        PLATFORM,
        "motive_categories",
        path_and_query(&uri),
        |world| {
            let account = clinic(world, &clinic_id, &specialty)?;
            if cabinet != account.place.practice_id.to_string() {
                return Err(failure(StatusCode::NOT_FOUND, "unknown cabinet"));
            }
            let categories: Vec<Value> = account
                .motives
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let agendas: Vec<Value> = account
                        .agendas
                        .iter()
                        .filter(|a| a.motive_ids.contains(&m.id))
                        .map(|a| json!({"id": a.id, "name": a.practitioner, "hidden": true}))
                        .collect();
                    json!({
                        "motive_category_id": 7000 + m.id,
                        "name": format!("Je consulte pour : {}", m.name),
                        "position": i,
                        "resource_type": "Clinic",
                        "motives": [{"id": m.id, "name": m.name, "position": 0,
                                     "teleconsultation": false, "booking_delay_until": 1440,
                                     "agendas": agendas}],
                    })
                })
                .collect();
            Ok(json!(categories))
        },
    )
    .await
}

async fn timetable(
    State(sim): State<Simulator>,
    Path(motive_id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    uri: Uri,
) -> Response {
    sim.respond(PLATFORM, "timetables", path_and_query(&uri), |world| {
        timetable_doc(world, &motive_id, &q)
    })
    .await
}

fn timetable_doc(world: &World, motive_id: &str, q: &[(String, String)]) -> Result<Value, Failure> {
    let day = |key: &str| {
        q.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
            .ok_or_else(|| {
                failure(
                    StatusCode::BAD_REQUEST,
                    format!("{key} (YYYY-MM-DD) is required"),
                )
            })
    };
    let (from, to) = (day("from")?, day("to")?);
    if to < from || (to - from).num_days() >= MAX_DAYS {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            format!("from..to must be 1 to {MAX_DAYS} days"),
        ));
    }
    let agenda_ids: Vec<u64> = q
        .iter()
        .filter(|(k, _)| k == "agenda_ids[]")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| failure(StatusCode::BAD_REQUEST, "invalid agenda id"))
        })
        .collect::<Result<_, _>>()?;
    let motive_id: u64 = motive_id
        .parse()
        .map_err(|_| failure(StatusCode::NOT_FOUND, "unknown motive"))?;
    let (account, motive) = world
        .on(Platform::Keldoc)
        .find_map(|a| a.motives.iter().find(|m| m.id == motive_id).map(|m| (a, m)))
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown motive"))?;
    if !motive.allow_new_patients {
        return Ok(json!({
            "text": "La prise de RDV pour cette consultation est uniquement disponible au :",
            "num": "01 23 45 67 89",
            "num_text": "01 23 45... Afficher le numéro",
            "phone_number": "+33123456789",
        }));
    }
    let agendas: Vec<&Agenda> = account
        .agendas
        .iter()
        .filter(|a| agenda_ids.contains(&a.id))
        .collect();
    let times_on = |day: NaiveDate| {
        let mut out: Vec<(DateTime<Tz>, u64)> = agendas
            .iter()
            .flat_map(|a| {
                world
                    .slots_on(account, a, motive, day)
                    .into_iter()
                    .map(|t| (t, a.id))
            })
            .collect();
        out.sort();
        out
    };
    let mut days = BTreeMap::new();
    let mut d = from;
    while d <= to {
        let times: Vec<Value> = times_on(d)
            .iter()
            .map(|(t, agenda)| {
                json!({"start_time": keldoc_time(t), "end_time": keldoc_time(&end(t, motive)),
                       "agenda_id": agenda})
            })
            .collect();
        if !times.is_empty() {
            days.insert(d.format("%Y-%m-%d").to_string(), times);
        }
        d += Duration::days(1);
    }
    if !days.is_empty() {
        return Ok(json!({ "availabilities": days }));
    }
    let (_, last) = world.availability_days();
    let mut d = to + Duration::days(1);
    while d < last {
        if let Some((t, _)) = times_on(d).first() {
            return Ok(json!({
                "text": format!("Prochain RDV disponible le {}", t.format("%d/%m/%Y à %Hh%M")),
                "date": keldoc_time(t),
            }));
        }
        d += Duration::days(1);
    }
    Ok(json!({ "availabilities": {} }))
}
