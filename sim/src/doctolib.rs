//! Doctolib, as the simulator serves it.
//!
//! Public availability, in the shapes ViteMaDose recorded:
//! - `GET /booking/{centre}.json`: profile, visit motive categories, visit motives,
//!   agendas (`visit_motive_ids_by_practice_id`, `booking_disabled`) and places;
//! - `GET /availabilities.json?start_date=&visit_motive_ids=&agenda_ids=&practice_ids=&limit=`:
//!   one entry per day with its slots (ISO strings, `{start_date, end_date}` objects or
//!   bare dates, depending on the agenda), and `next_slot` when the range has none.
//!
//! The practice API (Doctolib's partner API is not public; this one is passerelle's own,
//! documented in docs/simulator.md):
//! - `GET /api/v1/profiles/{profile_id}/appointments?start=&end=&updated_since=&per_page=`
//!   and `page=` or `after_updated_at=&after_id=` with `Authorization: Bearer <token>`:
//!   the profile's appointments with their patients, ordered by `updated_at` (to the
//!   second, as sent) then id, paginated by number or by key (the page after an item).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::world::{normalised, Account, Agenda, Motive, Platform, SlotFormat, World};
use crate::Simulator;
use crate::{failure, path_and_query, ExpectedSlot, Failure};

const PLATFORM: &str = "doctolib";
/// Most days one availabilities request may cover.
pub const MAX_LIMIT: i64 = 15;
/// Largest page of the practice API.
pub const MAX_PER_PAGE: usize = 100;

pub fn routes() -> Router<Simulator> {
    Router::new()
        .route("/booking/{file}", get(booking))
        .route("/availabilities.json", get(availabilities))
        .route(
            "/api/v1/profiles/{profile_id}/appointments",
            get(appointments),
        )
}

async fn booking(State(sim): State<Simulator>, Path(file): Path<String>, uri: Uri) -> Response {
    sim.respond(PLATFORM, "booking", path_and_query(&uri), |world| {
        let centre = file
            .strip_suffix(".json")
            .ok_or_else(|| failure(StatusCode::NOT_FOUND, "not found"))?;
        let account = world
            .account_by_centre(Platform::Doctolib, centre)
            .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown centre"))?;
        Ok(booking_doc(account))
    })
    .await
}

/// The booking document of an account's centre.
pub fn booking_doc(account: &Account) -> Value {
    let pid = account.place.practice_id;
    // Doctolib has sent the profile id both as a string and as a number.
    let profile_id = match account.kind {
        crate::world::Kind::General => json!(account.profile_id.to_string()),
        _ => json!(account.profile_id),
    };
    let categories: Vec<Value> = account
        .motives
        .iter()
        .filter_map(|m| m.category_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|id| json!({"id": id, "name": "Soins dentaires"}))
        .collect();
    json!({
        "data": {
            "profile": {
                "id": profile_id,
                "name_with_title": account.place.name,
            },
            "visit_motive_categories": categories,
            "visit_motives": account.motives.iter().map(|m| {
                let mut v = json!({
                    "id": m.id,
                    "name": m.name,
                    "ref_visit_motive_id": m.ref_visit_motive_id,
                    "allow_new_patients": m.allow_new_patients,
                    "vaccination_motive": false,
                    "first_shot_motive": false,
                });
                if let Some(c) = m.category_id {
                    v["visit_motive_category_id"] = json!(c);
                }
                v
            }).collect::<Vec<_>>(),
            "agendas": account.agendas.iter().map(|a| json!({
                "id": a.id,
                "booking_disabled": a.booking_disabled,
                "practice_id": pid,
                "practitioner_name": a.practitioner,
                "visit_motive_ids_by_practice_id": { pid.to_string(): a.motive_ids },
            })).collect::<Vec<_>>(),
            "places": [{
                "id": account.place.id,
                "practice_ids": [pid],
                "name": account.place.name,
                "full_address": account.place.address,
                "city": account.place.city,
                "zipcode": account.place.zipcode,
                "latitude": 45.75 + (pid % 100) as f64 / 1000.0,
                "longitude": 4.85 + (pid % 37) as f64 / 1000.0,
            }],
        }
    })
}

/// The account's settings and secrets for the `doctolib` connector.
pub fn settings(account: &Account) -> (crate::Settings, crate::Settings) {
    (
        vec![
            ("centre", account.centre.clone()),
            ("profile-id", account.profile_id.to_string()),
        ],
        vec![("api-token", account.token.clone())],
    )
}

/// A bookable free time as Doctolib publishes it: a bare-date agenda shows the day
/// (a slot spanning it); an object agenda shows the end too.
pub fn publish(
    world: &World,
    account: &Account,
    agenda: &Agenda,
    motive: &Motive,
    t: &DateTime<chrono_tz::Tz>,
) -> Option<ExpectedSlot> {
    let (starts_at, ends_at) = match agenda.slot_format {
        SlotFormat::DateOnly => {
            let day = crate::world::midnight(t.date_naive());
            // The day began before any host's clock: a host does not store it.
            if day.with_timezone(&Utc) < world.epoch {
                return None;
            }
            let next = crate::world::midnight(t.date_naive() + Duration::days(1));
            (normalised(&day), Some(normalised(&next)))
        }
        SlotFormat::IsoString => (normalised(t), None),
        SlotFormat::Object => (
            normalised(t),
            Some(normalised(
                &(*t + Duration::minutes(i64::from(motive.duration_min))),
            )),
        ),
    };
    Some(ExpectedSlot {
        starts_at,
        ends_at,
        practitioner: agenda.practitioner.clone(),
        visit_motive: motive.name.clone(),
        place: account.place.name.clone(),
    })
}

fn ids(text: Option<&String>) -> Result<Vec<u64>, Failure> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => t
            .split('-')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| failure(StatusCode::BAD_REQUEST, format!("invalid id list `{t}`")))
            })
            .collect(),
    }
}

fn render_slot(format: SlotFormat, t: &DateTime<chrono_tz::Tz>, minutes: u32) -> Value {
    let doctolib = |t: &DateTime<chrono_tz::Tz>| t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
    match format {
        SlotFormat::IsoString => json!(doctolib(t)),
        SlotFormat::Object => json!({
            "start_date": doctolib(t),
            "end_date": doctolib(&(*t + Duration::minutes(i64::from(minutes)))),
        }),
        SlotFormat::DateOnly => json!(t.format("%Y-%m-%d").to_string()),
    }
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
    let start = q
        .get("start_date")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            failure(
                StatusCode::BAD_REQUEST,
                "start_date (YYYY-MM-DD) is required",
            )
        })?;
    let limit: i64 = match q.get("limit") {
        None => 7,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                failure(
                    StatusCode::BAD_REQUEST,
                    format!("limit must be 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let motive_ids = ids(q.get("visit_motive_ids"))?;
    let agenda_ids = ids(q.get("agenda_ids"))?;
    let practice_ids = ids(q.get("practice_ids"))?;
    if agenda_ids.is_empty() || motive_ids.is_empty() {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "agenda_ids and visit_motive_ids are required",
        ));
    }
    let account = world
        .on(Platform::Doctolib)
        .find(|a| a.agendas.iter().any(|g| g.id == agenda_ids[0]))
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown agenda"))?;
    let here = practice_ids.is_empty() || practice_ids.contains(&account.place.practice_id);
    let agendas: Vec<_> = account
        .agendas
        .iter()
        .filter(|a| agenda_ids.contains(&a.id))
        .collect();
    let motives: Vec<_> = account
        .motives
        .iter()
        .filter(|m| motive_ids.contains(&m.id))
        .collect();
    let slots_on =
        |day: NaiveDate| {
            let mut out: Vec<(DateTime<chrono_tz::Tz>, Value)> = Vec::new();
            if !here {
                return out;
            }
            for agenda in &agendas {
                for motive in &motives {
                    let slots = world.slots_on(account, agenda, motive, day);
                    if agenda.slot_format == SlotFormat::DateOnly {
                        if let Some(first) = slots.first() {
                            out.push((*first, render_slot(SlotFormat::DateOnly, first, 0)));
                        }
                    } else {
                        out.extend(slots.iter().map(|t| {
                            (*t, render_slot(agenda.slot_format, t, motive.duration_min))
                        }));
                    }
                }
            }
            out.sort_by_key(|(t, _)| *t);
            out
        };
    let mut days = Vec::new();
    let mut total = 0;
    for i in 0..limit {
        let day = start + Duration::days(i);
        let slots: Vec<Value> = slots_on(day).into_iter().map(|(_, v)| v).collect();
        total += slots.len();
        days.push(json!({ "date": day.format("%Y-%m-%d").to_string(), "slots": slots, "substitution": null }));
    }
    let mut doc = json!({ "availabilities": days, "total": total });
    if total == 0 {
        let (_, last) = world.availability_days();
        let mut day = start + Duration::days(limit);
        while day < last {
            if let Some((t, _)) = slots_on(day).first() {
                doc["next_slot"] = json!(t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string());
                break;
            }
            day += Duration::days(1);
        }
    }
    Ok(doc)
}

async fn appointments(
    State(sim): State<Simulator>,
    Path(profile_id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    sim.respond(PLATFORM, "appointments", path_and_query(&uri), |world| {
        appointments_doc(world, &profile_id, token.as_deref(), &q)
    })
    .await
}

/// An instant to the second (as the practice API shows `updated_at`).
fn seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()))
}

fn instant(q: &BTreeMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, Failure> {
    q.get(key)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    failure(
                        StatusCode::BAD_REQUEST,
                        format!("{key} must be an RFC 3339 timestamp"),
                    )
                })
        })
        .transpose()
}

fn appointments_doc(
    world: &World,
    profile_id: &str,
    token: Option<&str>,
    q: &BTreeMap<String, String>,
) -> Result<Value, Failure> {
    let token = token.ok_or_else(|| failure(StatusCode::UNAUTHORIZED, "bearer token required"))?;
    let owner = world
        .on(Platform::Doctolib)
        .find(|a| a.token == token)
        .ok_or_else(|| failure(StatusCode::UNAUTHORIZED, "invalid token"))?;
    let account = profile_id
        .parse::<u64>()
        .ok()
        .and_then(|id| world.account_by_profile(Platform::Doctolib, id))
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown profile"))?;
    if owner.profile_id != account.profile_id {
        return Err(failure(
            StatusCode::FORBIDDEN,
            "this token does not give access to this profile",
        ));
    }
    let start = instant(q, "start")?;
    let end = instant(q, "end")?;
    let since = instant(q, "updated_since")?;
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .clamp(1, MAX_PER_PAGE);
    // Paging by key: the items after (updated_at, id), both as sent.
    let after = match (instant(q, "after_updated_at")?, q.get("after_id")) {
        (Some(t), Some(id)) => Some((t, id.clone())),
        (None, None) => None,
        _ => {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "after_updated_at and after_id go together",
            ))
        }
    };
    // The order is the one the answer shows: `updated_at` to the second, then id.
    let key = |a: &crate::world::Appointment| (seconds(a.updated_at), a.id.clone());
    let mut matching: Vec<_> = account
        .appointments
        .values()
        .filter(|a| start.is_none_or(|s| a.start >= s))
        .filter(|a| end.is_none_or(|e| a.start < e))
        .filter(|a| since.is_none_or(|s| a.updated_at >= s))
        .filter(|a| after.as_ref().is_none_or(|k| key(a) > *k))
        .collect();
    matching.sort_by_key(|a| key(a));
    // By key, the answer is the first page of what follows the key.
    let page = if after.is_some() { 1 } else { page };
    let total = matching.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let motive_name = |id: u64| {
        account
            .motives
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.name.clone())
    };
    let practitioner = |id: u64| {
        account
            .agendas
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.practitioner.clone())
    };
    let items: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|a| {
            json!({
                "id": a.id,
                "start_date": normalised(&a.start),
                "end_date": normalised(&a.end),
                "status": a.status.as_str(),
                "updated_at": a.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "agenda_id": a.agenda_id,
                "practitioner_name": practitioner(a.agenda_id),
                "visit_motive_id": a.motive_id,
                "visit_motive_name": motive_name(a.motive_id),
                "patient": {
                    "id": a.patient.id,
                    "first_name": a.patient.first_name,
                    "last_name": a.patient.last_name,
                    "birthdate": a.patient.birth_date.format("%Y-%m-%d").to_string(),
                    "phone_number": a.patient.phone,
                    "email": a.patient.email,
                },
            })
        })
        .collect();
    Ok(json!({
        "appointments": items,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_entries": total,
        },
    }))
}
