//! One account of a published practice as a ViteMaDose centre: the practice's place
//! (address, coordinates), the account's listing (booking URL, type; its practice's
//! where the account has none), its next slot, how many bookable slots it has, what it
//! offers (visit motives mapped by the operator to the published vocabulary), slot
//! counts over the next 1, 2, 7, 28 and 49 days, and its slots by local day and hour.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde_json::{json, Value};

use super::{department_zone, rfc3339};
use crate::app::Passerelle;
use crate::ServiceResult;
use passerelle_model::public::PublicInfo;
use passerelle_model::run::{RunFilter, Status};
use passerelle_store::practices::{Account, Practice};

/// The windows of `appointment_schedules`, in days from today's midnight.
pub const SCHEDULES: [i64; 5] = [1, 2, 7, 28, 49];

/// A centre, ready to be written.
pub struct Centre {
    pub department: String,
    /// `internal_id`: how the daily counts name it.
    pub id: String,
    pub appointments: usize,
    /// Bookable slots by local day and hour, over the longest window.
    pub daily: BTreeMap<NaiveDate, [u64; 24]>,
    pub json: Value,
}

/// What the format needs as a string or a number that neither the practice's public
/// record nor the account's listing gives.
pub fn missing_fields(public: &PublicInfo, account: &Account) -> Vec<&'static str> {
    let listing = account.listing.as_ref();
    [
        ("address", public.address.is_none()),
        ("city", public.city.is_none()),
        ("postcode", public.postcode.is_none()),
        (
            "coordinates",
            public.latitude.is_none() || public.longitude.is_none(),
        ),
        (
            "booking URL",
            listing.and_then(|l| l.booking_url.as_ref()).is_none() && public.booking_url.is_none(),
        ),
    ]
    .into_iter()
    .filter(|(_, missing)| *missing)
    .map(|(field, _)| field)
    .collect()
}

/// ViteMaDose's display name of a platform.
fn platform_name(connector: &str) -> String {
    match connector {
        "doctolib" => "Doctolib".into(),
        "keldoc" => "Keldoc".into(),
        "maiia" => "Maiia".into(),
        "ordoclic" => "Ordoclic".into(),
        "mapharma" => "Mapharma".into(),
        other => other.to_string(),
    }
}

impl Passerelle {
    /// `account` of `practice` as a centre; `several`: the practice has other accounts
    /// (the account's label then tells them apart).
    pub(super) async fn centre(
        &self,
        practice: &Practice,
        public: &PublicInfo,
        account: &Account,
        several: bool,
        now: DateTime<Utc>,
        unmapped: &mut BTreeSet<String>,
    ) -> ServiceResult<Centre> {
        let now_ms = now.timestamp_millis();
        let slots: Vec<_> = self
            .store
            .slots(&account.id)
            .await?
            .into_iter()
            .filter(|s| s.starts_at_ms >= now_ms)
            .collect();
        let tz = department_zone(&public.department);
        let today = now.with_timezone(&tz).date_naive();
        let midnight = tz
            .from_local_datetime(&today.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .unwrap_or_else(|| now.with_timezone(&tz));
        let schedules: Vec<Value> = SCHEDULES
            .iter()
            .map(|days| {
                let to = midnight + Duration::days(*days) - Duration::seconds(1);
                let (from_ms, to_ms) = (midnight.timestamp_millis(), to.timestamp_millis());
                let total = slots
                    .iter()
                    .filter(|s| s.starts_at_ms >= from_ms && s.starts_at_ms <= to_ms)
                    .count();
                json!({"name": format!("{days}_days"), "from": rfc3339(&midnight),
                    "to": rfc3339(&to), "total": total})
            })
            .collect();
        let last_day = today + Duration::days(SCHEDULES[SCHEDULES.len() - 1]);
        let mut daily: BTreeMap<NaiveDate, [u64; 24]> = BTreeMap::new();
        for slot in &slots {
            let Some(at) = DateTime::from_timestamp_millis(slot.starts_at_ms) else {
                continue;
            };
            let local = at.with_timezone(&tz);
            if local.date_naive() < last_day {
                daily.entry(local.date_naive()).or_insert([0; 24])[local.hour() as usize] += 1;
            }
        }
        let next = slots.iter().min_by_key(|s| s.starts_at_ms).map(|s| {
            DateTime::from_timestamp_millis(s.starts_at_ms)
                .map(|t| rfc3339(&t.with_timezone(&tz)))
                .unwrap_or_else(|| s.starts_at.clone())
        });
        let mut vaccines = BTreeSet::new();
        for motive in slots.iter().filter_map(|s| s.visit_motive.as_deref()) {
            match self.config.export.motives.get(motive) {
                Some(published) => {
                    vaccines.insert(published.as_str());
                }
                None => {
                    unmapped.insert(motive.to_string());
                }
            }
        }
        let last_scan = if slots.is_empty() {
            None
        } else {
            self.store
                .list_runs(&RunFilter {
                    account_id: Some(account.id.clone()),
                    status: Some(Status::Succeeded),
                    limit: Some(1),
                    ..RunFilter::default()
                })
                .await?
                .into_iter()
                .next()
                .and_then(|r| r.finished_at)
        };
        let name = match (several, &account.label) {
            (true, Some(label)) => format!("{} — {label}", practice.name),
            _ => practice.name.clone(),
        };
        let listing = account.listing.clone().unwrap_or_default();
        let url = listing.booking_url.or_else(|| public.booking_url.clone());
        let kind = listing
            .kind
            .or_else(|| public.kind.clone())
            .unwrap_or_else(|| "general-practitioner".into());
        let id = format!("{}{}", account.connector, account.id);
        let json = json!({
            "departement": public.department,
            "nom": name,
            "url": url,
            "location": {
                "longitude": public.longitude,
                "latitude": public.latitude,
                "city": public.city,
                "cp": public.postcode,
            },
            "metadata": {
                "address": public.address,
                "business_hours": null,
            },
            "prochain_rdv": next,
            "plateforme": platform_name(&account.connector),
            "type": kind,
            "appointment_count": slots.len(),
            "internal_id": id,
            "vaccine_type": vaccines,
            "appointment_by_phone_only": false,
            "erreur": null,
            "last_scan_with_availabilities": last_scan,
            "request_counts": null,
            "appointment_schedules": schedules,
        });
        Ok(Centre {
            department: public.department.clone(),
            id,
            appointments: slots.len(),
            daily,
            json,
        })
    }
}
