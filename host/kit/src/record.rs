//! Recording: `passerelle sync --record DIR` keeps every exchange of a run and writes
//! them as a cassette `connector test` can replay — with no secret and no patient value
//! in it (redacted by the service's one rule, [`passerelle_service::flight::redact`]);
//! and `passerelle runs cassette RUN --out DIR` writes what the flight recorder kept of
//! a run that drifted or failed, in the same format.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::cassette::{CassetteFile, ExchangeFile, ReplayDefaults, INDEX};
use super::KitError;
use passerelle_model::records::PatientRecord;
use passerelle_model::run::{Mode, Run, Trigger};
use passerelle_runtime::capabilities::http::Recording;
use passerelle_service::app::Passerelle;
use passerelle_service::flight::{redact, Cassette, CassetteReplay};
use passerelle_service::sync::SyncOptions;

/// Syncs one account while recording, then writes the cassette into `dir` (which must
/// not exist or be empty). The run, and the cassette's folder.
pub async fn record_sync(
    app: &Passerelle,
    account_id: &str,
    mode: Mode,
    dir: &Path,
) -> Result<(Run, PathBuf), KitError> {
    ensure_empty(dir)?;
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
        .appointments_of_run(&account.id, run.id)
        .await?
        .into_iter()
        .filter_map(|a| a.record.patient)
        .collect();
    let exchanges = std::mem::take(&mut *recording.lock().expect("not poisoned"));
    let cassette = Cassette {
        replay: CassetteReplay {
            now: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            window: format!(
                "{}:{}",
                app.config.sync.window_past_days, app.config.sync.window_future_days
            ),
            settings: account.settings.clone(),
            mode: Some(mode.as_str().to_string()),
            cursor: run.cursor_before.clone(),
        },
        truncated: false,
        exchanges: redact::redact(
            &exchanges,
            redact::Redaction {
                patients: &patients,
                names_by_member: false,
                scrubber: None,
            },
        ),
    };
    write_cassette(dir, &cassette, "passerelle sync --record")?;
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

/// Refuses a folder that holds something: a cassette needs its own.
pub fn ensure_empty(dir: &Path) -> Result<(), KitError> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(KitError::Scaffold(format!(
            "{}: not an empty folder; a cassette needs its own",
            dir.display()
        )));
    }
    Ok(())
}

/// Writes `cassette` into `dir` (created owner-only; it must not exist or be empty) as
/// `cassette.toml` and one body file per exchange, readable by `connector test`.
/// `by` names what recorded it, in the index's header.
pub fn write_cassette(dir: &Path, cassette: &Cassette, by: &str) -> Result<(), KitError> {
    ensure_empty(dir)?;
    let io = |e: std::io::Error| KitError::Scaffold(format!("writing {}: {e}", dir.display()));
    // Owner-only: what a platform answered may name people the redaction missed.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let mut file = CassetteFile {
        replay: Some(ReplayDefaults {
            now: Some(cassette.replay.now.clone()),
            window: Some(cassette.replay.window.clone()),
            settings: cassette.replay.settings.clone(),
            mode: cassette.replay.mode.clone(),
            cursor: cassette.replay.cursor.clone(),
        }),
        exchanges: Vec::new(),
    };
    for (i, e) in cassette.exchanges.iter().enumerate() {
        let name = format!("{:03}.{}", i + 1, if e.json { "json" } else { "txt" });
        write_private(&dir.join(&name), e.body.as_bytes()).map_err(io)?;
        file.exchanges.push(ExchangeFile {
            method: e.method.clone(),
            url: e.url.clone(),
            headers: Default::default(),
            body_json: None,
            status: e.status,
            headers_out: e.headers.clone(),
            body: Some(name),
            body_text: None,
            note: e.note.clone(),
        });
    }
    let text = format!(
        "# Recorded by `{by}` ({} exchanges). Secret values and patient values are not in\n\
         # it: placeholders of the same shape stand in their place.\n{}{}",
        cassette.exchanges.len(),
        if cassette.truncated {
            "# Truncated: the run received more than the flight recorder keeps; the\n\
             # exchanges after the first one left out are missing.\n"
        } else {
            ""
        },
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
