//! The restore drill: `passerelle backup` while a daemon runs a round of syncs, then
//! `passerelle restore` into new data directories — refused without the source's
//! secrets key, whole with it (the audit trail verifies, every secret opens, the totals
//! are the backup's), a quiet backup equal to its source record for record, and the
//! restored copy syncing the next run. PostgreSQL is pg_dump's and pg_restore's (the
//! backup command says so), then `restore --check`'s: the same drill.

use std::path::Path;

use axum::http::Method;
use passerelle::model::run::Status;
use passerelle::service::Passerelle;
use passerelle_tests::daemon::{daemon_config, daemon_env, quiet_options, run_ids, write_config};
use passerelle_tests::{databases, sim_config};

/// `passerelle --data-dir DIR --config CONFIG ARGS…`.
fn passerelle(data_dir: &Path, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(passerelle_tests::daemon::binary());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("PASSERELLE_SECRETS_KEY")
        .env_remove("PASSERELLE_SERVER");
    cmd
}

/// Runs a command off the async workers (the daemon in this process keeps answering):
/// whether it succeeded, its stdout, and both streams for messages.
async fn output_of(mut cmd: std::process::Command) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run passerelle"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let both = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), stdout, both)
}

/// A new data directory holding a copy of `source`'s secrets key, as the operator
/// puts it there before restoring.
fn with_key(source: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(source.join("secrets.key"), dir.join("secrets.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(
            dir.join("secrets.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_backup_taken_while_runs_go_restores_whole() {
    let dbs = databases().await;
    let db = dbs.iter().find(|d| d.name == "sqlite").unwrap();
    let d = daemon_env(db, sim_config(3, 20), daemon_config(), quiet_options()).await;
    let source = d.sim.env.data_dir();
    let config = write_config(&source, &d.sim.env.app.config);
    let out = tempfile::tempdir().unwrap();
    let (during, quiet) = (out.path().join("during.db"), out.path().join("quiet.db"));

    // A round of "Sync now" of every practice, a backup while it runs.
    let mut ids = Vec::new();
    for p in d.practice_ids() {
        ids.extend(run_ids(
            &d.call(Method::POST, &format!("/v1/practices/{p}/sync"), None)
                .await,
        ));
    }
    let (ok, _, text) = output_of(passerelle(
        &source,
        &config,
        &["backup", "--out", during.to_str().unwrap()],
    ))
    .await;
    assert!(
        ok && text.contains("keep the data directory's secrets.key"),
        "{text}"
    );
    let runs = d.wait_for(&ids).await;
    assert!(
        runs.iter().all(|r| r.status == Status::Succeeded),
        "{runs:?}"
    );
    // Never over a file.
    let (ok, _, text) = output_of(passerelle(
        &source,
        &config,
        &["backup", "--out", during.to_str().unwrap()],
    ))
    .await;
    assert!(!ok && text.contains("never written over"), "{text}");
    let (ok, stdout, text) = output_of(passerelle(
        &source,
        &config,
        &["--json", "backup", "--out", quiet.to_str().unwrap()],
    ))
    .await;
    assert!(ok, "{text}");
    let quiet_report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    // Without the source's key: refused, saying which key and where it goes.
    let refused = out.path().join("no-key");
    let (ok, _, text) = output_of(passerelle(
        &refused,
        &config,
        &["restore", quiet.to_str().unwrap()],
    ))
    .await;
    assert!(!ok && text.contains("secrets.key"), "{text}");
    assert!(!refused.join("passerelle.db").exists());

    // With it: both backups restore, their audit trail intact and every secret open.
    for (backup, name) in [(&during, "from-during"), (&quiet, "from-quiet")] {
        let dir = out.path().join(name);
        with_key(&source, &dir);
        let (ok, stdout, text) = output_of(passerelle(
            &dir,
            &config,
            &["--json", "restore", backup.to_str().unwrap()],
        ))
        .await;
        assert!(ok, "{name}: {text}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(report["secrets"].as_u64().unwrap() > 0, "{report}");
        assert!(report["audit_entries"].as_u64().unwrap() > 0, "{report}");
        // A second restore into the same directory is refused.
        let (ok, _, text) = output_of(passerelle(
            &dir,
            &config,
            &["restore", backup.to_str().unwrap()],
        ))
        .await;
        assert!(!ok && text.contains("already holds a database"), "{text}");
        if name == "from-quiet" {
            // The restore adds its own audit entry; the records are the backup's.
            let mut restored = report["totals"].clone();
            let mut backed_up = quiet_report["totals"].clone();
            restored["audit_entries"] = 0.into();
            backed_up["audit_entries"] = 0.into();
            assert_eq!(restored, backed_up);
        }
    }

    // The quiet copy is its source, record for record; a daemon's next run works on it.
    let copy = Passerelle::open(&out.path().join("from-quiet"), d.sim.env.app.config.clone())
        .await
        .unwrap();
    assert_is_its_source_and_syncs(&d.sim.env.app, &copy).await;
}

/// The copy holds the source's appointments and slots, account for account; its
/// audit trail verifies; a run of its first account succeeds on it.
async fn assert_is_its_source_and_syncs(source: &Passerelle, copy: &Passerelle) {
    let accounts = source.store.list_accounts(None).await.unwrap();
    assert!(!accounts.is_empty());
    for account in &accounts {
        let theirs = source.store.appointments(&account.id).await.unwrap();
        let ours = copy.store.appointments(&account.id).await.unwrap();
        assert_eq!(ours, theirs, "{}: appointments", account.id);
        let theirs = source.store.slots(&account.id).await.unwrap();
        let ours = copy.store.slots(&account.id).await.unwrap();
        assert_eq!(ours, theirs, "{}: slots", account.id);
    }
    let account = copy.store.account(&accounts[0].id).await.unwrap().unwrap();
    let run = copy
        .sync_account(&account, passerelle_tests::manual_incremental())
        .await
        .unwrap();
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    let audit = copy.verify_audit().await.unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
}

/// `pg_dump ARGS…` or `pg_restore ARGS…`, which the PostgreSQL drill needs (Debian:
/// postgresql-client).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(tool);
    cmd.args(args);
    cmd
}

async fn run_tool(cmd: std::process::Command) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (ok, _, text) = output_of_tool(cmd).await;
    assert!(ok, "{program}: {text}");
}

async fn output_of_tool(mut cmd: std::process::Command) -> (bool, String, String) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("{program} (PostgreSQL's client tools; Debian: postgresql-client): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let both = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), stdout, both)
}

/// The PostgreSQL drill, as docs/operations.md tells it: `passerelle backup` says the
/// database is pg_dump's; pg_dump while a round of syncs runs, and again when quiet;
/// pg_restore each into a new database; `passerelle restore --check` refuses without
/// the source's key and passes with it (audit trail, every secret); the quiet copy
/// equals its source record for record and a host on it syncs the next run.
#[tokio::test]
async fn a_postgresql_database_restores_with_pg_restore() {
    let dbs = databases().await;
    let Some(db) = dbs.iter().find(|d| d.name == "postgres") else {
        return;
    };
    let base = passerelle_tests::postgres_url().unwrap();
    let schema = passerelle_tests::postgres_schema_of(db.url.as_deref().unwrap());
    let d = daemon_env(db, sim_config(3, 20), daemon_config(), quiet_options()).await;
    let source = d.sim.env.data_dir();
    let config = write_config(&source, &d.sim.env.app.config);
    let out = tempfile::tempdir().unwrap();

    let (ok, _, text) = output_of(passerelle(
        &source,
        &config,
        &[
            "backup",
            "--out",
            out.path().join("no.db").to_str().unwrap(),
        ],
    ))
    .await;
    assert!(!ok && text.contains("pg_dump"), "{text}");

    let mut ids = Vec::new();
    for p in d.practice_ids() {
        ids.extend(run_ids(
            &d.call(Method::POST, &format!("/v1/practices/{p}/sync"), None)
                .await,
        ));
    }
    let during = out.path().join("during.dump");
    let quiet = out.path().join("quiet.dump");
    let dump = |file: &Path| {
        pg_tool(
            "pg_dump",
            &[
                "--format=custom",
                "--no-owner",
                &format!("--schema={schema}"),
                &format!("--file={}", file.display()),
                &base,
            ],
        )
    };
    run_tool(dump(&during)).await;
    let runs = d.wait_for(&ids).await;
    assert!(
        runs.iter().all(|r| r.status == Status::Succeeded),
        "{runs:?}"
    );
    run_tool(dump(&quiet)).await;

    let mut made = Vec::new();
    for (file, name) in [(&during, "from-during"), (&quiet, "from-quiet")] {
        let (url, database) = passerelle_tests::postgres_new_database(&base).await;
        made.push(database);
        run_tool(pg_tool(
            "pg_restore",
            &[
                "--no-owner",
                &format!("--dbname={url}"),
                file.to_str().unwrap(),
            ],
        ))
        .await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let restored_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let mut restored_config = d.sim.env.app.config.clone();
        restored_config.database_url = Some(restored_url);
        let dir = out.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = write_config(&dir, &restored_config);
        // Without the source's key: refused, saying which key.
        let (ok, _, text) = output_of(passerelle(&dir, &cfg, &["restore", "--check"])).await;
        assert!(!ok && text.contains("secrets.key"), "{name}: {text}");
        with_key(&source, &dir);
        let (ok, stdout, text) =
            output_of(passerelle(&dir, &cfg, &["--json", "restore", "--check"])).await;
        assert!(ok, "{name}: {text}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(report["secrets"].as_u64().unwrap() > 0, "{report}");
        assert!(report["audit_entries"].as_u64().unwrap() > 0, "{report}");
        if name == "from-quiet" {
            let copy = Passerelle::open(&dir, restored_config).await.unwrap();
            assert_is_its_source_and_syncs(&d.sim.env.app, &copy).await;
            copy.store.close().await;
        }
    }
    for database in made {
        passerelle_tests::postgres_drop_database(&base, &database).await;
    }
}
