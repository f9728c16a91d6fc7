//! The open-data export in ViteMaDose's format: for every practice with public
//! metadata, one centre per account (platform listing) with its next slot, how many
//! bookable slots it has, what it offers (its visit motives mapped by the operator to
//! the published vocabulary, `export.motives`; unmapped ones are reported, not
//! published) and slot counts over the next 1, 2, 7, 28 and 49 days; written as
//! `info_centres.json` (every department), `{department}.json` (one department) and
//! `stats.json` (centres with and without availability per department). Times are local
//! to the centre's department (Paris, or the overseas department's own zone) with their
//! offset. A centre lacking what the format holds as a string or a number (address,
//! city, postcode, coordinates, booking URL) is left out and reported with the reason.
//! Each file is written to a temporary file beside it and renamed, so a reader never
//! sees half a file; a department file no longer exported is removed. Built only from
//! practices' public metadata and slots: no appointment, so no patient, can reach it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::public::PublicInfo;
use passerelle_model::run::{RunFilter, Status};
use passerelle_store::practices::{Account, Practice};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    pub dir: String,
    pub departments: usize,
    pub centres: usize,
    /// Centres with at least one bookable slot.
    pub available: usize,
    /// Practices left out: no public metadata (`practices set-public`).
    pub unpublished: usize,
    /// Centres left out, each with why.
    pub left_out: Vec<LeftOut>,
    /// Visit motives offered but not in `export.motives` (not published).
    pub unmapped_motives: BTreeSet<String>,
    /// Department files of an earlier export removed (no centre there any more).
    pub removed: Vec<String>,
}

/// A centre the export could not publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub practice: String,
    pub account: String,
    pub reason: String,
}

/// The zone a department's times are given in.
pub fn department_zone(department: &str) -> chrono_tz::Tz {
    use chrono_tz::{America, Europe, Indian};
    match department {
        "971" => America::Guadeloupe,
        "972" => America::Martinique,
        "973" => America::Cayenne,
        "974" => Indian::Reunion,
        "975" => America::Miquelon,
        "976" => Indian::Mayotte,
        "977" => America::St_Barthelemy,
        "978" => America::Marigot,
        _ => Europe::Paris,
    }
}

/// What the format needs as strings and numbers that `public` lacks.
fn missing_public_fields(public: &PublicInfo) -> Vec<&'static str> {
    [
        ("address", public.address.is_none()),
        ("city", public.city.is_none()),
        ("postcode", public.postcode.is_none()),
        (
            "coordinates",
            public.latitude.is_none() || public.longitude.is_none(),
        ),
        ("booking URL", public.booking_url.is_none()),
    ]
    .into_iter()
    .filter(|(_, missing)| *missing)
    .map(|(field, _)| field)
    .collect()
}

/// Whether `name` is a department file (`75.json`, `2A.json`, `971.json`).
fn is_department_file(name: &str) -> bool {
    let Some(code) = name.strip_suffix(".json") else {
        return false;
    };
    let b = code.as_bytes();
    match b.len() {
        2 => b.iter().all(u8::is_ascii_digit) || (b[0] == b'2' && matches!(b[1], b'A' | b'B')),
        3 => code.starts_with("97") && (b'1'..=b'8').contains(&b[2]),
        _ => false,
    }
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

/// The windows of `appointment_schedules`, in days from today's midnight.
const SCHEDULES: [i64; 5] = [1, 2, 7, 28, 49];

fn rfc3339<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

impl Passerelle {
    /// Writes the export into `dir` (created if missing) as of `now`.
    pub async fn export_vitemadose(
        &self,
        dir: &Path,
        now: DateTime<Utc>,
    ) -> ServiceResult<ExportReport> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServiceError::invalid(format!("cannot create {}: {e}", dir.display())))?;
        let practices = self.store.list_practices().await?;
        let accounts = self.store.list_accounts(None).await?;
        let mut by_department: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        let mut unpublished = 0;
        let mut left_out = Vec::new();
        let mut unmapped_motives = BTreeSet::new();
        for practice in &practices {
            let Some(public) = &practice.public else {
                unpublished += 1;
                continue;
            };
            let own: Vec<&Account> = accounts
                .iter()
                .filter(|a| a.practice_id == practice.id)
                .collect();
            let missing = missing_public_fields(public);
            for account in &own {
                if !missing.is_empty() {
                    left_out.push(LeftOut {
                        practice: practice.id.clone(),
                        account: account.id.clone(),
                        reason: format!(
                            "its practice's public metadata lacks {} (`passerelle practices set-public`)",
                            missing.join(", ")
                        ),
                    });
                    continue;
                }
                let centre = self
                    .centre(
                        practice,
                        public,
                        account,
                        own.len() > 1,
                        now,
                        &mut unmapped_motives,
                    )
                    .await?;
                let entry = by_department.entry(public.department.clone()).or_default();
                if centre["appointment_count"].as_i64().unwrap_or(0) > 0 {
                    entry.0.push(centre);
                } else {
                    entry.1.push(centre);
                }
            }
        }
        let last_updated = rfc3339(&now);
        let mut all = (Vec::new(), Vec::new());
        let mut stats = serde_json::Map::new();
        let (mut centres, mut available) = (0, 0);
        for (department, (with, without)) in &by_department {
            write_atomically(
                &dir.join(format!("{department}.json")),
                &json!({"version": 1, "last_updated": last_updated,
                    "centres_disponibles": with, "centres_indisponibles": without}),
            )?;
            stats.insert(
                department.clone(),
                json!({"disponibles": with.len(), "total": with.len() + without.len()}),
            );
            centres += with.len() + without.len();
            available += with.len();
            all.0.extend(with.iter().cloned());
            all.1.extend(without.iter().cloned());
        }
        let mut ordered = serde_json::Map::new();
        ordered.insert(
            "tout_departement".into(),
            json!({"disponibles": available, "total": centres}),
        );
        ordered.extend(stats);
        write_atomically(
            &dir.join("info_centres.json"),
            &json!({"version": 1, "last_updated": last_updated,
                "centres_disponibles": all.0, "centres_indisponibles": all.1}),
        )?;
        write_atomically(&dir.join("stats.json"), &Value::Object(ordered))?;
        let mut removed = Vec::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ServiceError::invalid(format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let department = name.trim_end_matches(".json");
            if is_department_file(&name) && !by_department.contains_key(department) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| ServiceError::Internal(anyhow::anyhow!("removing {name}: {e}")))?;
                removed.push(name);
            }
        }
        removed.sort();
        Ok(ExportReport {
            dir: dir.display().to_string(),
            departments: by_department.len(),
            centres,
            available,
            unpublished,
            left_out,
            unmapped_motives,
            removed,
        })
    }

    /// One account of a practice as a ViteMaDose centre.
    async fn centre(
        &self,
        practice: &Practice,
        public: &PublicInfo,
        account: &Account,
        several: bool,
        now: DateTime<Utc>,
        unmapped: &mut BTreeSet<String>,
    ) -> ServiceResult<Value> {
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
        Ok(json!({
            "departement": public.department,
            "nom": name,
            "url": public.booking_url,
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
            "type": public.kind.as_deref().unwrap_or("general-practitioner"),
            "appointment_count": slots.len(),
            "internal_id": format!("{}{}", account.connector, account.id),
            "vaccine_type": vaccines,
            "appointment_by_phone_only": false,
            "erreur": null,
            "last_scan_with_availabilities": last_scan,
            "request_counts": null,
            "appointment_schedules": schedules,
        }))
    }
}

/// Writes `value` to `path` through a temporary file in the same directory, synced and
/// renamed over it, readable by all (0644: open data, which a web server running as
/// another user serves; the temporary file would be 0600).
fn write_atomically(path: &Path, value: &Value) -> ServiceResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| {
        ServiceError::Internal(anyhow::anyhow!("writing {}: {e}", path.display()))
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    serde_json::to_writer_pretty(&mut file, value).map_err(|e| failed(e.into()))?;
    file.write_all(b"\n").map_err(failed)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}
