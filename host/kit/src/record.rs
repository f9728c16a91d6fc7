//! Recording: `passerelle sync --record DIR` keeps every exchange of a run and writes
//! them as a cassette `connector test` can replay — with no secret and no patient value
//! in it. Secret values never reach it (the HTTP capability removes them from responses
//! before anything else sees them, and requests carry them only in headers, which are
//! not recorded); the patient values the run emitted are replaced in the response
//! bodies by placeholders of the same shape (a date stays a date, an e-mail an e-mail),
//! so the replayed run parses the same and stores the same records, patients aside.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cassette::{CassetteFile, ExchangeFile, ReplayDefaults, INDEX};
use super::KitError;
use passerelle_model::records::PatientRecord;
use passerelle_model::run::{Mode, Run, Trigger};
use passerelle_runtime::capabilities::http::{Recorded, Recording};
use passerelle_service::app::Passerelle;
use passerelle_service::sync::SyncOptions;

/// Response headers kept in a cassette: what a connector may read, not transport details.
const KEPT_HEADERS: &[&str] = &["content-type", "retry-after", "location", "link"];

/// Syncs one account while recording, then writes the cassette into `dir` (which must
/// not exist or be empty). The run, and the cassette's folder.
pub async fn record_sync(
    app: &Passerelle,
    account_id: &str,
    mode: Mode,
    dir: &Path,
) -> Result<(Run, PathBuf), KitError> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(KitError::Scaffold(format!(
            "{}: not an empty folder; a recording needs its own",
            dir.display()
        )));
    }
    let account = app.account(account_id).await?;
    let recording = Recording::default();
    let now = chrono::Utc::now();
    let run = app
        .sync_account(
            &account,
            SyncOptions {
                trigger: Trigger::Manual,
                mode,
                now: Some(now),
                record: Some(recording.clone()),
            },
        )
        .await?;
    let patients: Vec<PatientRecord> = app
        .store
        .appointments(&account.id)
        .await?
        .into_iter()
        .filter(|a| a.last_seen_run == run.id)
        .filter_map(|a| a.record.patient)
        .collect();
    let exchanges = std::mem::take(&mut *recording.lock().expect("not poisoned"));
    let replay = ReplayDefaults {
        now: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        window: Some(format!(
            "{}:{}",
            app.config.sync.window_past_days, app.config.sync.window_future_days
        )),
        settings: account.settings.clone(),
    };
    write(dir, &exchanges, &Placeholders::new(&patients), replay)?;
    // A recording holds what a platform answered about a practice: on the trail.
    app.audit(
        "sync.record",
        &account.id,
        serde_json::json!({"run": run.id, "cassette": dir.display().to_string(),
            "exchanges": exchanges.len()}),
    )
    .await?;
    Ok((run, dir.to_path_buf()))
}

fn write(
    dir: &Path,
    exchanges: &[Recorded],
    placeholders: &Placeholders,
    replay: ReplayDefaults,
) -> Result<(), KitError> {
    let io = |e: std::io::Error| KitError::Scaffold(format!("writing {}: {e}", dir.display()));
    // Owner-only: what a platform answered may name people the placeholders missed.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let mut file = CassetteFile {
        replay: Some(replay),
        exchanges: Vec::new(),
    };
    for (i, e) in exchanges.iter().enumerate() {
        let json = serde_json::from_slice::<Value>(&e.body).ok();
        let (body, ext) = match json {
            Some(mut v) => {
                placeholders.apply_json(&mut v);
                (serde_json::to_vec_pretty(&v).expect("serialisable"), "json")
            }
            None => (
                placeholders
                    .apply_text(&String::from_utf8_lossy(&e.body))
                    .into_bytes(),
                "txt",
            ),
        };
        let name = format!("{:03}.{ext}", i + 1);
        write_private(&dir.join(&name), &body).map_err(io)?;
        file.exchanges.push(ExchangeFile {
            method: e.method.clone(),
            url: e.url.clone(),
            headers: BTreeMap::new(),
            body_json: None,
            status: e.status,
            headers_out: e
                .headers
                .iter()
                .filter(|(k, _)| KEPT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k.to_ascii_lowercase(), placeholders.apply_text(v)))
                .collect(),
            body: Some(name),
            body_text: None,
        });
    }
    let text = format!(
        "# Recorded by `passerelle sync --record` ({} exchanges). Secret values and the\n\
         # patient values the run emitted are not in it: placeholders of the same shape\n\
         # stand in their place.\n{}",
        exchanges.len(),
        toml::to_string(&file).map_err(|e| KitError::Internal(e.into()))?
    );
    write_private(&dir.join(INDEX), text.as_bytes()).map_err(io)?;
    Ok(())
}

/// Writes a new file readable by its owner only (mode 0600).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// Patient values → stand-ins of the same shape. Distinctive values (full names, birth
/// dates, phones, e-mails) are replaced wherever they appear; a lone first or last name,
/// or a patient id, only where it is a whole JSON string — a practitioner may share a
/// patient's surname, and must stay as the platform sent it.
struct Placeholders {
    anywhere: Vec<(String, String)>,
    whole: BTreeMap<String, String>,
}

impl Placeholders {
    fn new(patients: &[PatientRecord]) -> Placeholders {
        let mut anywhere: BTreeMap<String, String> = BTreeMap::new();
        let mut whole: BTreeMap<String, String> = BTreeMap::new();
        let usable = |v: &String| v.chars().count() >= 2;
        for (n, p) in patients.iter().enumerate() {
            let n = n + 1;
            let (first, last) = (format!("Prénom{n}"), format!("Nom{n}"));
            for (value, stand_in) in [
                (
                    format!("{} {}", p.first_name, p.last_name),
                    format!("{first} {last}"),
                ),
                (
                    format!("{} {}", p.last_name, p.first_name),
                    format!("{last} {first}"),
                ),
            ] {
                anywhere.entry(value).or_insert(stand_in);
            }
            for (value, stand_in) in [
                (
                    p.birth_date.as_ref(),
                    same_shape_date(p.birth_date.as_deref()),
                ),
                (p.phone.as_ref(), digits_to_zero(p.phone.as_deref())),
                (p.email.as_ref(), format!("patient{n}@example.invalid")),
            ] {
                if let Some(v) = value.filter(|v| usable(v)) {
                    anywhere.entry(v.clone()).or_insert(stand_in);
                }
            }
            for (value, stand_in) in [
                (Some(&p.first_name), first.clone()),
                (Some(&p.last_name), last.clone()),
                (p.external_id.as_ref(), format!("patient-{n}")),
            ] {
                if let Some(v) = value.filter(|v| usable(v)) {
                    whole.entry(v.clone()).or_insert(stand_in);
                }
            }
        }
        let mut anywhere: Vec<(String, String)> = anywhere.into_iter().collect();
        anywhere.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Placeholders { anywhere, whole }
    }

    fn apply_text(&self, text: &str) -> String {
        if let Some(stand_in) = self.whole.get(text) {
            return stand_in.clone();
        }
        let mut out = text.to_string();
        for (value, stand_in) in &self.anywhere {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), stand_in);
            }
        }
        out
    }

    fn apply_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.apply_text(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.apply_json(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.apply_json(i)),
            _ => {}
        }
    }
}

/// A date in the same format: `1984-03-12` → `1900-01-01`; another shape keeps its
/// separators, every digit `1` (`12/03/1984` → `11/11/1111`, still a date).
fn same_shape_date(d: Option<&str>) -> String {
    let d = d.unwrap_or_default();
    if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() {
        "1900-01-01".into()
    } else {
        d.chars()
            .map(|c| if c.is_ascii_digit() { '1' } else { c })
            .collect()
    }
}

fn digits_to_zero(s: Option<&str>) -> String {
    s.unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::record::*;

    #[test]
    fn patient_values_become_stand_ins_of_the_same_shape() {
        let p = PatientRecord {
            external_id: Some("pat-77".into()),
            first_name: "Zoéline".into(),
            last_name: "Quintardeau".into(),
            birth_date: Some("1984-03-12".into()),
            phone: Some("+33 6 55 12 34 56".into()),
            email: Some("zoe.q@patients.example".into()),
        };
        let stand_ins = Placeholders::new(&[p]);
        let mut v: Value = serde_json::json!({"patient": {
            "id": "pat-77", "name": "Zoéline Quintardeau", "last": "Quintardeau",
            "born": "1984-03-12", "phone": "+33 6 55 12 34 56",
            "mail": "zoe.q@patients.example", "n": 3},
            "practitioner": "Dr Ada Quintardeau"});
        stand_ins.apply_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"patient": {
                "id": "patient-1", "name": "Prénom1 Nom1", "last": "Nom1",
                "born": "1900-01-01", "phone": "+00 0 00 00 00 00",
                "mail": "patient1@example.invalid", "n": 3},
                "practitioner": "Dr Ada Quintardeau"})
        );
    }
}
