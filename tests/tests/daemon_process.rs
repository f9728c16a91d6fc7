//! `passerelle serve` as a real process on a temporary data directory, against the
//! in-process simulator: syncs triggered through the admin API, SIGTERM in the middle of
//! runs, SIGKILL in the middle of a run, restarts; no run is left `running`, interrupted
//! runs are recorded as `cancelled`, and after a final sync the stored data is exactly
//! the simulator's (no duplicates, no losses). JSON logs carry no patient data.
//! SQLite and PostgreSQL.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use passerelle_tests as common;

use common::daemon::{
    binary, daemon_config, wait_for_runs, write_config, ServeProcess as Daemon, TOKEN,
};
use common::{databases, sim_config, sim_env_with};
use passerelle::model::run::{Mode, Run, Status};
use passerelle_sim::Faults;
use serde_json::Value;

#[tokio::test]
async fn sigterm_sigkill_and_restart_lose_and_duplicate_nothing() {
    for db in databases().await {
        let mut config = daemon_config();
        config.daemon.max_concurrent_runs = 2;
        config.daemon.shutdown_grace_secs = 1;
        config.daemon.manual_min_interval_secs = 0;
        // A killed daemon's runs are taken over once their lease ends.
        config.daemon.lease_secs = 3;
        let sim = sim_env_with(&db, sim_config(3, 40), config).await;
        let data_dir = sim.env.data_dir();
        let config_path = write_config(&data_dir, &sim.env.app.config);
        let log = data_dir.join("serve.log");
        let store = sim.env.app.store.clone();
        let practices: Vec<String> = sim
            .sim
            .world()
            .practices
            .iter()
            .map(|p| p.id.clone())
            .collect();
        let accounts: Vec<String> = sim.sim.world().accounts().map(|a| a.id.clone()).collect();
        let slow = Faults {
            latency_ms: 300,
            ..Faults::default()
        };

        // 1. SIGTERM while two runs are going and three are queued: the two get the
        //    grace period, then are cancelled; the three stay queued.
        sim.sim.set_faults("doctolib", slow.clone());
        let d = Daemon::start(&config_path, &data_dir, &log).await;
        let ids = d.sync_all(&practices, false).await;
        assert_eq!(ids.len(), accounts.len());
        d.wait_running(2).await;
        d.signal(Signal::SIGTERM);
        let status = d.exit().await;
        assert!(status.success(), "SIGTERM is a clean exit: {status}");
        let mut runs = Vec::new();
        for id in &ids {
            runs.push(store.run(*id).await.unwrap().unwrap());
        }
        let interrupted: Vec<&Run> = runs
            .iter()
            .filter(|r| {
                r.status == Status::Cancelled
                    && r.error_detail
                        .as_deref()
                        .is_some_and(|d| d.contains("grace period"))
            })
            .collect();
        let queued: Vec<i64> = runs
            .iter()
            .filter(|r| r.status == Status::Queued)
            .map(|r| r.id)
            .collect();
        assert_eq!((interrupted.len(), queued.len()), (2, 3), "{runs:?}");

        // 2. Restart: what was left queued runs. A run killed outright (SIGKILL) is
        //    recorded as interrupted (at the next start on SQLite, once its lease ends on
        //    PostgreSQL) and its work queued again, which the next daemon runs.
        let d = Daemon::start(&config_path, &data_dir, &log).await;
        for run in wait_for_runs(&store, &queued).await {
            assert_eq!(run.status, Status::Succeeded, "{run:?}");
        }
        let killed = d.sync_all(&practices[..1], true).await;
        d.wait_running(1).await;
        d.signal(Signal::SIGKILL);
        let status = d.exit().await;
        assert!(!status.success());
        sim.sim.clear_faults();
        let d = Daemon::start(&config_path, &data_dir, &log).await;
        let killed_runs = wait_for_runs(&store, &killed).await;
        let mut interrupted_accounts = Vec::new();
        for run in &killed_runs {
            match run.status {
                Status::Cancelled => {
                    assert_eq!(
                        run.error_kind
                            .map(passerelle::model::run::ErrorKind::as_str),
                        Some("interrupted"),
                        "{run:?}"
                    );
                    interrupted_accounts.push(run.account_id.clone());
                }
                // Queued when the daemon was killed: the next one ran it.
                status => assert_eq!(status, Status::Succeeded, "{run:?}"),
            }
        }
        assert!(!interrupted_accounts.is_empty(), "{killed_runs:?}");
        // Each interrupted run's work was queued again (next attempt) and done.
        let all = common::all_runs(&sim.env.app).await;
        for account in &interrupted_accounts {
            let again: Vec<i64> = all
                .iter()
                .filter(|r| &r.account_id == account && r.attempt == 2 && r.mode == Mode::Full)
                .map(|r| r.id)
                .collect();
            assert_eq!(again.len(), 1, "{account}: {all:?}");
            let again = wait_for_runs(&store, &again).await;
            assert_eq!(again[0].status, Status::Succeeded, "{:?}", again[0]);
        }

        // 3. A full sync of everything: exactly the simulator's data.
        let ids = d.sync_all(&practices, true).await;
        let runs = wait_for_runs(&store, &ids).await;
        assert!(
            runs.iter().all(|r| r.status == Status::Succeeded),
            "{runs:?}"
        );
        for a in &accounts {
            sim.assert_matches_truth(a, db.name).await;
        }
        let runs = common::all_runs(&sim.env.app).await;
        assert!(
            runs.iter()
                .all(|r| !matches!(r.status, Status::Queued | Status::Running)),
            "nothing left running"
        );
        // The command line drives the daemon with --server: the same commands. (Run
        // asynchronously: the simulator answering the daemon lives on this runtime.)
        let cli = |args: &[&str]| {
            let mut command = tokio::process::Command::new(binary());
            command
                .args(["--server", &d.base, "--token", TOKEN])
                .args(args)
                .env_remove("PASSERELLE_CONFIG");
            async move {
                let out = command.output().await.unwrap();
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).to_string(),
                    String::from_utf8_lossy(&out.stderr).to_string(),
                )
            }
        };
        let (ok, out, err) = cli(&["practices", "list"]).await;
        assert!(ok, "{err}");
        for p in &practices {
            assert!(out.contains(p.as_str()), "{out}");
        }
        assert!(out.contains("next sync"), "{out}");
        let (ok, out, err) = cli(&["sync", &practices[0]]).await;
        assert!(ok, "{err}");
        assert!(out.contains("succeeded") && out.contains("manual"), "{out}");
        let (ok, out, _) =
            cli(&["runs", "--practice", &practices[0], "--status", "succeeded"]).await;
        assert!(ok && out.contains(&format!("{}/", practices[0])), "{out}");
        let (ok, out, err) = cli(&["appointments", "--practice", &practices[0]]).await;
        assert!(ok, "{err}");
        assert!(out.contains("patient"), "{out}");
        let (ok, _, err) = cli(&["plugins", "validate", "x.wasm"]).await;
        assert!(!ok && err.contains("without --server"), "{err}");
        let out = Command::new(binary())
            .args([
                "--server",
                &d.base,
                "--token",
                "wrong-token-000000",
                "practices",
                "list",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token"));

        // Without a token, liveness alone; with one, who is live.
        let bare: Value = reqwest::get(format!("{}/healthz", d.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(bare, serde_json::json!({"status": "ok"}));
        let healthz: Value = reqwest::Client::new()
            .get(format!("{}/healthz", d.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(healthz["status"], "ok");
        // The daemon's id (host/pid by default), live, in /healthz and `passerelle
        // daemons` (through the API, and read from the database here).
        let id = healthz["daemon"].as_str().unwrap().to_string();
        assert!(id.ends_with(&format!("/{}", d.child.id())), "{healthz}");
        // (The daemon killed above is listed too until its lease ends.)
        assert!(
            healthz["daemons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id"] == id.as_str()),
            "{healthz}"
        );
        let (ok, out, err) = cli(&["daemons"]).await;
        assert!(
            ok && out.contains(&id) && out.contains("running"),
            "{out}{err}"
        );
        let local = Command::new(binary())
            .args(["--data-dir"])
            .arg(&data_dir)
            .arg("--config")
            .arg(&config_path)
            .args(["--json", "daemons"])
            .output()
            .unwrap();
        let listed: Value = serde_json::from_slice(&local.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&local.stderr)));
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id"] == id.as_str()),
            "{listed}"
        );
        d.signal(Signal::SIGTERM);
        assert!(d.exit().await.success());

        // The process logged JSON, one span per run with ids inside the daemon's span (its
        // id), and no patient data.
        let text = std::fs::read_to_string(&log).unwrap();
        let mut run_lines = 0;
        for line in text.lines() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if v["span"]["name"] == "run" {
                run_lines += 1;
                assert!(v["span"]["account"].is_string() && v["span"]["practice"].is_string());
                assert_eq!(v["span"]["connector"], "doctolib");
                // Inside the daemon's span, with its id.
                assert_eq!(v["spans"][0]["name"], "daemon", "{line}");
                assert!(v["spans"][0]["id"]
                    .as_str()
                    .is_some_and(|id| id.contains('/')));
            }
        }
        assert!(run_lines > 0, "run spans are logged");
        let world = sim.sim.world().clone();
        for a in world.accounts() {
            for appt in a.appointments.values() {
                let p = &appt.patient;
                for value in [
                    format!("{} {}", p.first_name, p.last_name),
                    p.email.clone(),
                    p.phone.clone(),
                ] {
                    assert!(!text.contains(&value), "patient data in the daemon's log");
                }
            }
        }
    }
}

#[test]
fn check_config_validates_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passerelle.toml");
    std::fs::write(
        &path,
        "[daemon]\nmax_concurrent_runs = 3\n[schedule]\nspread_secs = 600\n",
    )
    .unwrap();
    let check = |envs: &[(&str, &str)]| {
        let out = Command::new(binary())
            .args(["serve", "--check-config"])
            .env("PASSERELLE_CONFIG", &path)
            .env("PASSERELLE_DATA_DIR", dir.path())
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = check(&[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("max_concurrent_runs = 3") && out.contains("spread_secs = 600"),
        "{out}"
    );
    assert!(out.contains("configuration OK"));
    // The environment wins over the file.
    let (ok, out) = check(&[
        ("PASSERELLE_DAEMON__MAX_CONCURRENT_RUNS", "5"),
        ("PASSERELLE_DAEMON__TOKEN", "a-token-long-enough-123"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("max_concurrent_runs = 5"), "{out}");
    assert!(
        !out.contains("a-token-long-enough-123"),
        "the token is not printed"
    );
    for (key, value, says) in [
        ("PASSERELLE_DAEMON__MAX_CONCURRENT_RUNS", "0", "at least 1"),
        ("PASSERELLE_DAEMON__LISTEN", "nowhere", "DAEMON.LISTEN"),
        (
            "PASSERELLE_SCHEDULE__DEFAULT_CRON",
            "every day",
            "default_cron",
        ),
        ("PASSERELLE_DAEMON__TOKEN", "short", "16 characters"),
    ] {
        let (ok, out) = check(&[(key, value)]);
        assert!(!ok, "{key}={value} accepted");
        assert!(out.contains(says), "{key}: {out}");
    }
    std::fs::write(&path, "[daemon]\nlisten = 8787\n").unwrap();
    let (ok, out) = check(&[]);
    assert!(!ok && out.contains("passerelle.toml"), "{out}");
}

/// One daemon, one account, a full run SIGKILLed at seeded random moments (between HTTP
/// calls, inside a checkpoint's transaction, between the last commit and the run's end —
/// wherever the moment falls), restarted each time: the killed run's record says exactly
/// what its committed checkpoints promised (its cursor is the account's, its counts are
/// what was stored), its work is done again, and at the end the data is the simulator's.
#[tokio::test]
async fn a_run_killed_at_random_moments_is_recorded_as_committed() {
    use rand::{Rng, SeedableRng};
    for db in databases().await {
        let mut config = daemon_config();
        config.daemon.manual_min_interval_secs = 0;
        config.daemon.lease_secs = 3;
        config.retry.max_attempts = 10;
        let OneAccount {
            sim,
            data_dir,
            config_path,
            log,
            store,
            practice,
            account,
        } = OneAccount::new(&db, config).await;
        sim.sim.set_faults(
            "doctolib",
            Faults {
                latency_ms: 60,
                ..Faults::default()
            },
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut with_checkpoints = 0;
        for round in 0..6 {
            let d = Daemon::start(&config_path, &data_dir, &log).await;
            let (status, body) = d
                .post(
                    &format!("/v1/practices/{practice}/sync"),
                    serde_json::json!({"account": account, "full": true}),
                )
                .await;
            assert_eq!(status, 202, "{body}");
            // The killed run of the round before may still hold its lease: the moment
            // counts from when this daemon runs the account's run (after its first
            // checkpoint every other round, so that some kills fall after one however
            // fast this machine is).
            d.wait_own_run(round % 2).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
            d.signal(Signal::SIGKILL);
            assert!(!d.exit().await.success());
            // Nothing runs now: the killed run's record against what is stored.
            let runs = common::all_runs(&sim.env.app).await;
            let killed = runs
                .iter()
                .filter(|r| r.account_id == account)
                .find(|r| r.status == Status::Running);
            let cursor = store.cursor(&account).await.unwrap();
            if let Some(killed) = killed {
                if killed.counts.checkpoints > 0 {
                    with_checkpoints += 1;
                    assert_eq!(
                        killed.cursor_after, cursor,
                        "{}: the killed run's cursor is the account's: {killed:?}",
                        db.name
                    );
                }
            }
        }
        // The last daemon does what was interrupted, and the data is the simulator's.
        let d = Daemon::start(&config_path, &data_dir, &log).await;
        common::daemon::wait_until_settled(&store, 1, 120).await;
        d.signal(Signal::SIGTERM);
        let exit = d.exit().await;
        assert!(exit.success(), "{exit:?}; the log's end:\n{}", tail(&log));
        let runs = common::all_runs(&sim.env.app).await;
        assert_eq!(runs[0].status, Status::Succeeded, "{:?}", runs[0]);
        assert!(
            with_checkpoints >= 2,
            "{}: only {with_checkpoints} kills fell after a checkpoint",
            db.name
        );
        sim.sim.clear_faults();
        sim.assert_matches_truth(&account, db.name).await;
    }
}

/// One daemon, one account's first full run, the process SIGKILLed (by itself, through a
/// fail point) at exact places — inside the second checkpoint's
/// transaction, and inside the transaction that makes the run's last commit and closes
/// it. After each: the store holds exactly what the committed checkpoints promised (the
/// run's record says so: its checkpoints, counts and cursor are what is stored, nothing
/// of the open transaction is), and a restarted daemon does the work again, after which
/// the data is the simulator's. On SQLite and PostgreSQL.
#[tokio::test]
async fn a_run_ended_inside_a_transaction_keeps_only_what_was_committed() {
    // (fail point, its action: `off` for the hits before the one that ends the process)
    let cases = [
        ("checkpoint-transaction", "1*off->return", Some(1)),
        ("last-transaction", "return", None),
    ];
    for (point, action, checkpoints) in cases {
        // A new database each time (a PostgreSQL schema is one per call).
        for db in databases().await {
            let mut config = daemon_config();
            config.daemon.lease_secs = 3;
            let OneAccount {
                sim,
                data_dir,
                config_path,
                log,
                store,
                practice,
                account,
            } = OneAccount::new(&db, config).await;
            let failpoints = format!("{point}={action}");
            let d = Daemon::start_with_env(
                &config_path,
                &data_dir,
                &log,
                &[("FAILPOINTS", &failpoints)],
            )
            .await;
            let (status, body) = d
                .post(
                    &format!("/v1/practices/{practice}/sync"),
                    serde_json::json!({"account": account, "full": true}),
                )
                .await;
            assert_eq!(status, 202, "{body}");
            let exit = d.exit().await;
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&exit),
                Some(9),
                "{}/{point}: the fail point kills the daemon",
                db.name
            );

            let what = format!("{}/{point}", db.name);
            let runs = common::all_runs(&sim.env.app).await;
            let killed = runs
                .iter()
                .find(|r| r.account_id == account)
                .unwrap_or_else(|| panic!("{what}: no run"));
            assert_eq!(killed.status, Status::Running, "{what}: {killed:?}");
            let committed = killed.counts.checkpoints;
            match checkpoints {
                Some(n) => assert_eq!(committed, n, "{what}: {killed:?}"),
                // The last transaction: every page's checkpoint before it committed.
                None => assert!(committed >= 2, "{what}: {killed:?}"),
            }
            assert_eq!(
                killed.cursor_after,
                store.cursor(&account).await.unwrap(),
                "{what}: the run's cursor is the account's"
            );
            assert!(killed.cursor_after.is_some(), "{what}: {killed:?}");
            // What is stored is what the record says was committed, and is the truth.
            let stored = sim.stored(&account).await;
            assert_eq!(
                stored.len() as i64,
                killed.counts.appointments_added,
                "{what}: stored appointments against the run's record: {killed:?}"
            );
            assert!(
                !stored.is_empty(),
                "{what}: a checkpoint had committed appointments"
            );
            let truth = sim.truth(&account);
            for s in &stored {
                let t = truth.iter().find(|t| t.id == s.id);
                assert!(
                    t == Some(s),
                    "{what}: appointment {} is not the simulator's",
                    s.id
                );
            }
            let (_, slots) = sim.slots(&account).await;
            assert_eq!(
                slots.len() as i64,
                killed.counts.slots_written,
                "{what}: stored slots against the run's record"
            );

            // A daemon without the fail point ends the interrupted run and does its work.
            let d = Daemon::start(&config_path, &data_dir, &log).await;
            common::daemon::wait_until_settled(&store, 1, 60).await;
            d.signal(Signal::SIGTERM);
            assert!(d.exit().await.success());
            let runs = common::all_runs(&sim.env.app).await;
            assert_eq!(runs[0].status, Status::Succeeded, "{what}: {:?}", runs[0]);
            sim.assert_matches_truth(&account, db.name).await;
        }
    }
}

/// One practice with one Doctolib account of 400 appointments, and what a `passerelle
/// serve` process on its data directory needs.
struct OneAccount {
    sim: common::SimEnv,
    data_dir: std::path::PathBuf,
    config_path: std::path::PathBuf,
    log: std::path::PathBuf,
    store: passerelle::store::Store,
    practice: String,
    account: String,
}

impl OneAccount {
    async fn new(db: &common::Db, config: passerelle::service::config::Config) -> OneAccount {
        let sim = sim_env_with(db, sim_config(1, 400), config).await;
        let data_dir = sim.env.data_dir();
        let config_path = write_config(&data_dir, &sim.env.app.config);
        let log = data_dir.join("serve.log");
        let store = sim.env.app.store.clone();
        let practice = sim.sim.world().practices[0].id.clone();
        let account = sim.sim.world().practices[0].accounts[0].id.clone();
        OneAccount {
            sim,
            data_dir,
            config_path,
            log,
            store,
            practice,
            account,
        }
    }
}

/// The last 40 lines of a daemon's log.
fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
