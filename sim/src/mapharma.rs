//! Mapharma, as the simulator serves it (the shape of ViteMaDose's recording):
//! `GET /api/public/calendar/{campaign}/{day}/{option}`: a map of days (`YYYY-MM-DD`)
//! to times (`HH:MM`, Paris), the first [`DAYS`] days from `day` on that have any, each
//! time with its free places (`places_dispo`, 0 when full); `[]` when there is none.
//!
//! A campaign is its account's profile id; the option is always 1.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::world::{normalised, Account, Platform};
use crate::{failure, path_and_query, stable_id, ExpectedSlot, Simulator};

const PLATFORM: &str = "mapharma";
/// Days with times one calendar answer holds (the recording holds eight).
pub const DAYS: usize = 8;

pub fn routes() -> Router<Simulator> {
    Router::new().route(
        "/api/public/calendar/{campaign}/{day}/{option}",
        get(calendar),
    )
}

pub fn settings(account: &Account) -> (crate::Settings, crate::Settings) {
    (
        vec![
            ("campaign", account.profile_id.to_string()),
            ("option", "1".into()),
        ],
        vec![],
    )
}

/// A bookable time as Mapharma publishes it: a local start, nothing else.
pub fn publish(t: &DateTime<Tz>) -> ExpectedSlot {
    ExpectedSlot {
        starts_at: normalised(t),
        ends_at: None,
        practitioner: String::new(),
        visit_motive: String::new(),
        place: String::new(),
    }
}

const WEEKDAYS: [&str; 7] = [
    "Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi", "Dimanche",
];

async fn calendar(
    State(sim): State<Simulator>,
    Path((campaign, day, option)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    sim.respond(PLATFORM, "calendar", path_and_query(&uri), |world| {
        let account = campaign
            .parse()
            .ok()
            .filter(|_| option == "1")
            .and_then(|id| world.account_by_profile(Platform::Mapharma, id))
            .ok_or_else(|| failure(StatusCode::NOT_FOUND, "unknown campaign"))?;
        let from = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|_| failure(StatusCode::BAD_REQUEST, "day must be YYYY-MM-DD"))?;
        let (agenda, motive) = (&account.agendas[0], &account.motives[0]);
        let mut days: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let (_, last) = world.availability_days();
        let mut d = from;
        while d < last && days.len() < DAYS {
            let today = d;
            d += Duration::days(1);
            for (t, places) in world.times_on(account, agenda, motive, today) {
                let id = stable_id(&[account.profile_id, t.timestamp() as u64]) % 10_000_000;
                days.entry(today.format("%Y-%m-%d").to_string()).or_default().push(json!({
                    "id": id,
                    "time": t.format("%H:%M").to_string(),
                    "textDay": format!("{} {}", WEEKDAYS[t.weekday().num_days_from_monday() as usize], t.format("%d/%m")),
                    "places_dispo": places,
                }));
            }
        }
        Ok(if days.is_empty() { json!([]) } else { json!(days) })
    })
    .await
}
