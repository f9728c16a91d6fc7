//! The open-data export in ViteMaDose's format: for every practice with public
//! metadata, one centre per account (platform listing; [`centre`]). It writes every file
//! the ViteMaDose front and its clients read:
//! - `departements.json`: the departments exported, with their names and regions;
//! - `{department}.json`: its centres, with and without availability;
//! - `{department}/creneaux-quotidiens.json`: per local day over the next 49 days, per
//!   centre, the bookable slots in all and by hour (tag `all`);
//! - `stats.json`: per department and in all, centres with availability, centres and
//!   slots (`creneaux`);
//! - `stats_by_date.json`: the same figures in all, one point per day an export ran
//!   (kept in the store, so the series survives a new output folder);
//! - `info_centres.json`, every centre, for older clients.
//!
//! Times are local to the centre's department (Paris, or the overseas department's own
//! zone) with their offset. A centre lacking what the format holds as a string or a
//! number (address, city, postcode, coordinates, booking URL) is left out and reported
//! with the reason, as is a practice in an unknown department. Files are replaced
//! atomically and readable by all ([`files`]); an earlier export's files of a
//! department no longer exported are removed. The report is kept in the store for the
//! console. Built only from practices' public metadata, accounts' listings and slots:
//! no appointment, so no patient, can reach it.

mod centre;
mod files;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use centre::{Centre, SCHEDULES};
use passerelle_model::departments::department;
use passerelle_store::export_stats::ExportDay;
use passerelle_store::practices::Account;

/// What an export wrote, and what it left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportReport {
    /// When it ran (RFC 3339).
    pub at: String,
    pub dir: String,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
    pub departments: usize,
    pub centres: usize,
    /// Centres with at least one bookable slot.
    pub available: usize,
    /// Bookable slots in all (`creneaux`).
    pub appointments: usize,
    /// Practices left out: no public metadata (`practices set-public`).
    pub unpublished: usize,
    /// Centres left out, each with why.
    pub left_out: Vec<LeftOut>,
    /// Visit motives offered but not in `export.motives` (not published).
    pub unmapped_motives: BTreeSet<String>,
    /// Files of an earlier export removed (no centre left in their department).
    pub removed: Vec<String>,
}

/// A centre the export could not publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

fn rfc3339<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A department's centres, available ones first, as `{department}.json` lists them.
#[derive(Default)]
struct Department {
    available: Vec<Centre>,
    unavailable: Vec<Centre>,
}

impl Department {
    fn creneaux(&self) -> usize {
        self.available.iter().map(|c| c.appointments).sum()
    }

    /// `creneaux-quotidiens.json`: every local day of the longest window from `now`.
    fn daily(&self, code: &str, now: DateTime<Utc>) -> Value {
        let today = now.with_timezone(&department_zone(code)).date_naive();
        let days: Vec<Value> = (0..SCHEDULES[SCHEDULES.len() - 1])
            .map(|n| {
                let day = today + Duration::days(n);
                let by_centre: Vec<Value> = self
                    .available
                    .iter()
                    .filter_map(|c| {
                        let hours = c.daily.get(&day)?;
                        Some(json!({"lieu": c.id, "creneaux_par_tag": [{
                            "tag": "all",
                            "creneaux": hours.iter().sum::<u64>(),
                            "creneaux_par_heure": hours,
                        }]}))
                    })
                    .collect();
                let total: u64 = self
                    .available
                    .iter()
                    .filter_map(|c| c.daily.get(&day))
                    .map(|h| h.iter().sum::<u64>())
                    .sum();
                json!({"date": day.format("%Y-%m-%d").to_string(), "total": total,
                    "creneaux_par_lieu": by_centre})
            })
            .collect();
        json!({"creneaux_quotidiens": days})
    }
}

impl Passerelle {
    /// Writes the export into `dir` (created if missing) as of `now`, and keeps its
    /// report for the console.
    pub async fn export_vitemadose(
        &self,
        dir: &Path,
        now: DateTime<Utc>,
    ) -> ServiceResult<ExportReport> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServiceError::invalid(format!("cannot create {}: {e}", dir.display())))?;
        let practices = self.store.list_practices().await?;
        let accounts = self.store.list_accounts(None).await?;
        let mut by_department: BTreeMap<String, Department> = BTreeMap::new();
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
            for account in &own {
                let leave_out = |reason: String| LeftOut {
                    practice: practice.id.clone(),
                    account: account.id.clone(),
                    reason,
                };
                if department(&public.department).is_none() {
                    left_out.push(leave_out(format!(
                        "its practice's department `{}` is not a French department code",
                        public.department
                    )));
                    continue;
                }
                let missing = centre::missing_fields(public, account);
                if !missing.is_empty() {
                    left_out.push(leave_out(format!(
                        "no {} in its practice's public metadata (`passerelle practices set-public`) or its listing (`passerelle accounts set-public`)",
                        missing.join(", ")
                    )));
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
                let entry = by_department.entry(centre.department.clone()).or_default();
                if centre.appointments > 0 {
                    entry.available.push(centre);
                } else {
                    entry.unavailable.push(centre);
                }
            }
        }
        let last_updated = rfc3339(&now);
        let mut written = Vec::new();
        let jsons =
            |centres: &[Centre]| -> Vec<Value> { centres.iter().map(|c| c.json.clone()).collect() };
        let mut stats = serde_json::Map::new();
        let mut listed = Vec::new();
        let (mut centres, mut available, mut appointments) = (0, 0, 0);
        let mut all = (Vec::new(), Vec::new());
        for (code, d) in &by_department {
            let (with, without) = (jsons(&d.available), jsons(&d.unavailable));
            files::write(
                dir,
                &format!("{code}.json"),
                &json!({"version": 1, "last_updated": last_updated,
                    "centres_disponibles": with, "centres_indisponibles": without}),
                &mut written,
            )?;
            files::write(
                dir,
                &format!("{code}/{}", files::DAILY),
                &d.daily(code, now),
                &mut written,
            )?;
            stats.insert(
                code.clone(),
                json!({"disponibles": with.len(), "total": with.len() + without.len(),
                    "creneaux": d.creneaux()}),
            );
            let known = department(code).expect("checked above");
            listed.push(
                json!({"code_departement": known.code, "nom_departement": known.name,
                "code_region": known.region_code, "nom_region": known.region}),
            );
            centres += with.len() + without.len();
            available += with.len();
            appointments += d.creneaux();
            all.0.extend(with);
            all.1.extend(without);
        }
        let mut ordered = serde_json::Map::new();
        ordered.insert(
            "tout_departement".into(),
            json!({"disponibles": available, "total": centres, "creneaux": appointments}),
        );
        ordered.extend(stats);
        files::write(
            dir,
            "departements.json",
            &Value::Array(listed),
            &mut written,
        )?;
        files::write(
            dir,
            "info_centres.json",
            &json!({"version": 1, "last_updated": last_updated,
                "centres_disponibles": all.0, "centres_indisponibles": all.1}),
            &mut written,
        )?;
        files::write(dir, "stats.json", &Value::Object(ordered), &mut written)?;
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.store
            .record_export_day(&ExportDay {
                day: now
                    .with_timezone(&chrono_tz::Europe::Paris)
                    .format("%Y-%m-%d")
                    .to_string(),
                centres_available: as_i64(available),
                centres: as_i64(centres),
                appointments: as_i64(appointments),
            })
            .await?;
        let days = self.store.export_days().await?;
        files::write(
            dir,
            "stats_by_date.json",
            &json!({
                "dates": days.iter().map(|d| &d.day).collect::<Vec<_>>(),
                "total_centres_disponibles": days.iter().map(|d| d.centres_available).collect::<Vec<_>>(),
                "total_centres": days.iter().map(|d| d.centres).collect::<Vec<_>>(),
                "total_appointments": days.iter().map(|d| d.appointments).collect::<Vec<_>>(),
            }),
            &mut written,
        )?;
        let exported: BTreeSet<String> = by_department.keys().cloned().collect();
        let removed = files::remove_stale(dir, &exported)?;
        let report = ExportReport {
            at: last_updated,
            dir: dir.display().to_string(),
            files: written,
            departments: by_department.len(),
            centres,
            available,
            appointments,
            unpublished,
            left_out,
            unmapped_motives,
            removed,
        };
        self.store
            .set_last_export(&serde_json::to_string(&report).expect("a report serialises"))
            .await?;
        Ok(report)
    }

    /// The last export's report, whichever daemon or command wrote it.
    pub async fn last_export(&self) -> ServiceResult<Option<ExportReport>> {
        Ok(self
            .store
            .last_export()
            .await?
            // Written by this code; one from another version that no longer reads is
            // as good as none.
            .and_then(|json| serde_json::from_str(&json).ok()))
    }
}
