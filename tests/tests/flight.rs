//! The flight recorder, end to end on the simulator: a platform renames a field, the run
//! drifts and keeps its exchanges as a sealed, redacted cassette; `runs cassette`
//! exports it (audited, scope-checked); the drifting version fails `connector test` on
//! it and the fixed build passes; successful runs keep nothing; retention bounds what is
//! kept. SQLite and PostgreSQL.

use passerelle::model::run::{Mode, Status};
use passerelle::service::principal::{as_principal, Principal, Scope};
use passerelle_tests as common;

use common::{component, databases, renamed_start_date, sim_config, variant};

const FIXED: &str = "doctolib-0.2.0-start-date-v2.wasm";

/// `connector test COMPONENT --cassette DIR --full` through the kit, as the CLI runs it.
async fn replay(
    component: std::path::PathBuf,
    cassette: &std::path::Path,
) -> passerelle::kit::TestReport {
    passerelle::kit::test(passerelle::kit::TestOptions {
        component,
        cassette: cassette.to_path_buf(),
        fixtures: Vec::new(),
        live: None,
        bench: passerelle::kit::harness::BenchOptions {
            settings: Default::default(),
            secrets: [("api-token".to_string(), "replayed-token".to_string())].into(),
            now: None,
            window: None,
            cursor: None,
        },
        full: false,
        expect: None,
        bless: false,
        checks: Vec::new(),
    })
    .await
    .unwrap()
}

/// One full run of `account` by another process's view of the same data directory
/// (another configuration).
async fn sync_with(
    dir: &std::path::Path,
    config: passerelle::service::config::Config,
    account: &str,
) -> passerelle::model::run::Run {
    let other = passerelle::Passerelle::open(dir, config).await.unwrap();
    let stored = other.store.account(account).await.unwrap().unwrap();
    other
        .sync_account(
            &stored,
            passerelle::service::sync::SyncOptions {
                trigger: passerelle::model::run::Trigger::Manual,
                mode: Mode::Full,
                now: None,
                record: None,
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_drifted_run_keeps_a_sealed_redacted_cassette_that_reproduces_the_drift_and_proves_the_fix(
) {
    for db in databases().await {
        let mut config = passerelle::service::config::Config::default();
        config
            .flight_recorder
            .baselines
            .insert("doctolib".into(), 100);
        let sim = common::sim_env_with(&db, sim_config(1, 12), config).await;
        let app = &sim.env.app;
        let world = sim.sim.world().clone();
        let account = world.accounts().next().unwrap().clone();

        // Every doctolib account keeps a baseline: its last successful run.
        let ok = sim.sync(&account.id, Mode::Full).await;
        assert_eq!(ok.status, Status::Succeeded, "{ok:?}");
        let baseline = app
            .run_cassette_meta(ok.id)
            .await
            .unwrap()
            .expect("a baseline");
        assert_eq!(baseline.reason, "baseline");
        let again = sim.sync(&account.id, Mode::Full).await;
        assert_eq!(again.status, Status::Succeeded, "{again:?}");
        assert_eq!(
            app.run_cassette_meta(ok.id).await.unwrap(),
            None,
            "one baseline per account"
        );
        let baseline = app
            .run_cassette_meta(again.id)
            .await
            .unwrap()
            .expect("a baseline");
        assert_eq!(baseline.exchanges, again.counts.http_requests);

        // The platform renames a field: the run drifts and keeps its exchanges.
        sim.sim.set_faults("doctolib", renamed_start_date());
        // Incremental, as the daemon's runs are: its requests depend on its cursor.
        let drifted = sim.sync(&account.id, Mode::Incremental).await;
        assert!(drifted.cursor_before.is_some(), "{drifted:?}");
        assert_eq!(drifted.status, Status::Drift, "{drifted:?}");
        // The drift report shows the structure there: the renamed member, no value.
        let shape = drifted
            .drift
            .as_ref()
            .unwrap()
            .shape
            .clone()
            .expect("a shape");
        assert!(shape.starts_with("$.appointments[0]: {"), "{shape}");
        assert!(
            shape.contains("\"start_date_v2\": string") && !shape.contains("\"start_date\""),
            "{shape}"
        );
        assert!(
            !shape.contains(&account.id) && !shape.contains('@'),
            "{shape}"
        );
        let meta = app
            .run_cassette_meta(drifted.id)
            .await
            .unwrap()
            .expect("a drifted run keeps its cassette");
        assert_eq!(meta.reason, "drift");
        // The run's own exchanges, then the baseline's for what it never reached.
        assert_eq!(
            meta.exchanges,
            drifted.counts.http_requests + baseline.exchanges,
            "{meta:?}"
        );
        assert!(meta.bytes > 0);

        // Sealed at rest: the row holds no platform text.
        let sealed: String =
            sqlx::query_scalar("SELECT sealed FROM run_cassettes WHERE run_id = $1")
                .bind(drifted.id)
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert!(sealed.starts_with("sealed1:"), "{}", &sealed[..20]);
        assert!(!sealed.contains("appointments") && !sealed.contains("doctolib"));

        // Reading it needs patients:read; a read token is refused, and nothing is audited.
        let reader = Principal {
            name: "token:reader".into(),
            scopes: vec![Scope::Read, Scope::AppointmentsRead],
        };
        let refused = as_principal(reader, app.run_cassette(drifted.id)).await;
        assert!(
            matches!(
                refused,
                Err(passerelle::service::ServiceError::Forbidden(_))
            ),
            "{refused:?}"
        );
        let read = as_principal(
            Principal::trusted("local:author"),
            app.run_cassette(drifted.id),
        )
        .await
        .unwrap();
        assert_eq!((read.run_id, read.reason.as_str()), (drifted.id, "drift"));
        let noted: Vec<_> = read
            .cassette
            .exchanges
            .iter()
            .filter_map(|e| e.note.clone())
            .collect();
        assert_eq!(noted.len() as i64, baseline.exchanges);
        assert!(
            noted
                .iter()
                .all(|n| *n == format!("baseline run {}", again.id)),
            "{noted:?}"
        );
        let trail = app.audit_entries(Some(5)).await.unwrap();
        let reads: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "run.cassette.read")
            .collect();
        assert_eq!(reads.len(), 1, "{trail:?}");
        assert_eq!(
            (reads[0].actor.as_str(), reads[0].target.as_str()),
            ("local:author", account.id.as_str())
        );

        // Exported in the kit's format: no secret, no patient value, no e-mail address.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("drift");
        passerelle::kit::record::write_cassette(&out, &read.cassette, "test").unwrap();
        let mut text = String::new();
        for entry in std::fs::read_dir(&out).unwrap() {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        assert!(
            text.contains("[replay]")
                && text.contains("now = ")
                && text.contains("mode = \"incremental\"")
                && text.contains(&format!(
                    "cursor = {:?}",
                    drifted.cursor_before.as_ref().unwrap()
                )),
            "{text}"
        );
        assert!(
            !text.contains(&account.token),
            "the secret is in the cassette"
        );
        let patients = common::assert_no_patient_value(&text, &world, "the cassette");
        assert!(patients > 0);

        // The command line writes the same cassette (a second audited read).
        let data_dir = sim.env.dir.path().to_str().unwrap().to_string();
        let cli_out = dir.path().join("cli");
        let run_arg = drifted.id.to_string();
        let mut env = vec![("PASSERELLE_DATA_DIR", data_dir.as_str())];
        if let Some(url) = &db.url {
            env.push(("PASSERELLE_DATABASE_URL", url.as_str()));
        }
        let printed = common::kit::passerelle_with_env(
            &[
                "--json",
                "runs",
                "cassette",
                &run_arg,
                "--out",
                cli_out.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(printed.code, 0, "{}", printed.stderr);
        let json: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
        assert_eq!(json["reason"], "drift");
        assert_eq!(json["exchanges"], meta.exchanges);
        for entry in std::fs::read_dir(&out).unwrap() {
            let name = entry.unwrap().file_name();
            assert_eq!(
                std::fs::read_to_string(out.join(&name))
                    .unwrap()
                    .replace("`test`", ""),
                std::fs::read_to_string(cli_out.join(&name))
                    .unwrap()
                    .replace(&format!("`passerelle runs cassette {}`", drifted.id), ""),
                "{name:?}"
            );
        }
        let again = common::kit::passerelle_with_env(
            &[
                "runs",
                "cassette",
                &run_arg,
                "--out",
                cli_out.to_str().unwrap(),
            ],
            &env,
        );
        assert!(
            again.code != 0 && again.stderr.contains("not an empty folder"),
            "{}",
            again.stderr
        );
        let reads = app
            .audit_entries(Some(10))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "run.cassette.read")
            .count();
        assert_eq!(reads, 2, "a refused folder is refused before the read");

        // The drifting version reproduces the drift offline; the fixed build passes.
        let old = replay(component("doctolib"), &out).await;
        assert_eq!(old.run.status, Status::Drift, "{:#?}", old.run);
        assert_eq!(
            old.run.drift.as_ref().unwrap().path,
            drifted.drift.as_ref().unwrap().path
        );
        assert!(!old.passed());
        let fixed = replay(variant(FIXED), &out).await;
        assert!(fixed.passed(), "{:#?} {:#?}", fixed.run, fixed.requests);
        assert!(!fixed.records.appointments.is_empty());
    }
}

#[tokio::test]
async fn kept_cassettes_stay_within_their_bounds_and_go_with_their_account() {
    for db in databases().await {
        let mut config = passerelle::service::config::Config::default();
        // Room for one recording of the run, not for three cassettes.
        config.flight_recorder.per_account_kib = 24;
        let sim = common::sim_env_with(&db, sim_config(1, 12), config).await;
        let app = &sim.env.app;
        let account = sim.sim.world().accounts().next().unwrap().id.clone();
        // Without baselines, a run that succeeds keeps nothing.
        let ok = sim.sync(&account, Mode::Full).await;
        assert_eq!(ok.status, Status::Succeeded, "{ok:?}");
        assert_eq!(app.run_cassette_meta(ok.id).await.unwrap(), None);
        sim.sim.set_faults("doctolib", renamed_start_date());
        let mut runs = Vec::new();
        for _ in 0..3 {
            let run = sim.sync(&account, Mode::Full).await;
            assert_eq!(run.status, Status::Drift);
            runs.push(run.id);
        }
        let kept = app.run_cassettes(Some("doctolib")).await.unwrap();
        // The oldest went; what stays is within the bound (or is the newest alone).
        let total: i64 = kept.iter().map(|k| k.bytes).sum();
        assert!(!kept.is_empty() && kept.len() < 3, "{kept:?}");
        assert_eq!(
            kept[0].run_id,
            *runs.last().unwrap(),
            "newest first: {kept:?}"
        );
        assert!(total <= 24 * 1024 || kept.len() == 1, "{kept:?}");
        assert!(kept.iter().all(|k| k.run_id != runs[0]), "{kept:?}");

        // A recording is bounded as it is made: what an account may not keep is not
        // held either (the first answer alone is over 1 KiB: nothing is recorded).
        let mut tight = app.config.clone();
        tight.flight_recorder.per_account_kib = 1;
        let run = sync_with(sim.env.dir.path(), tight, &account).await;
        assert_eq!(run.status, Status::Drift);
        assert!(run.counts.bytes_received > 1024);
        assert_eq!(app.run_cassette_meta(run.id).await.unwrap(), None);
        assert_eq!(run.drift.unwrap().shape, None, "no recording, no shape");

        // Off: a drift keeps nothing.
        let mut off = app.config.clone();
        off.flight_recorder.enabled = false;
        let run = sync_with(sim.env.dir.path(), off, &account).await;
        assert_eq!(run.status, Status::Drift);
        assert_eq!(app.run_cassette_meta(run.id).await.unwrap(), None);

        // Deleting the account deletes its cassettes.
        app.delete_account(&account, true).await.unwrap();
        assert!(app.run_cassettes(None).await.unwrap().is_empty());
    }
}

/// Shadow replay before activation: under `plugins.shadow_gate`, a build that silently
/// changes records waits for approval with the report's verdict, and the fixed build —
/// drift fixed, records identical on the baseline — activates; the re-driven account
/// then holds the simulator's data.
#[tokio::test]
async fn a_shadow_replay_gates_a_silently_wrong_build_and_lets_the_fix_through() {
    use passerelle::model::connector::Outcome;
    use passerelle::service::flight::shadow::Verdict;
    for db in databases().await {
        let mut config = passerelle::service::config::Config::default();
        config
            .flight_recorder
            .baselines
            .insert("doctolib".into(), 100);
        config.plugins.shadow_gate = vec!["doctolib".into()];
        let sim = common::sim_env_with(&db, sim_config(1, 12), config).await;
        let app = &sim.env.app;
        app.set_replayer(std::sync::Arc::new(passerelle::kit::shadow::BenchReplayer));
        let account = sim.sim.world().accounts().next().unwrap().id.clone();
        let ok = sim.sync(&account, Mode::Full).await;
        assert_eq!(ok.status, Status::Succeeded, "{ok:?}");
        sim.sim.set_faults("doctolib", renamed_start_date());
        let drifted = sim.sync(&account, Mode::Incremental).await;
        assert_eq!(drifted.status, Status::Drift, "{drifted:?}");

        // Validated with its shadow before anything is installed: refused, with why.
        let data_dir = sim.env.dir.path().to_str().unwrap().to_string();
        let mut env = vec![("PASSERELLE_DATA_DIR", data_dir.as_str())];
        if let Some(url) = &db.url {
            env.push(("PASSERELLE_DATABASE_URL", url.as_str()));
        }
        let wrong_file = variant("doctolib-0.3.0-silently-wrong.wasm");
        let validated = common::kit::passerelle_with_env(
            &[
                "plugins",
                "validate",
                wrong_file.to_str().unwrap(),
                "--shadow",
            ],
            &env,
        );
        assert_ne!(validated.code, 0, "{}", validated.stdout);
        assert!(
            validated.stdout.contains("records different")
                && validated.stdout.contains("drift fixed")
                && validated.stdout.contains("1 unexpected difference"),
            "{}",
            validated.stdout
        );

        // The wrong build reads the renamed field but drops practitioners: held back.
        let wrong = app
            .install_plugin(&variant("doctolib-0.3.0-silently-wrong.wasm"))
            .await
            .unwrap();
        assert_eq!(wrong.outcome, Outcome::PendingApproval);
        let why = wrong.escalation.unwrap().shadow.expect("a shadow verdict");
        assert!(why.contains("records different"), "{why}");
        let report = app.shadow("doctolib", "0.3.0").await.unwrap();
        assert_eq!(report.against.as_deref(), Some("0.1.0"));
        let by_run = |id: i64| report.cases.iter().find(|c| c.run_id == id).unwrap();
        assert_eq!(
            by_run(drifted.id).verdict,
            Verdict::DriftFixed,
            "{report:#?}"
        );
        let base = by_run(ok.id);
        assert_eq!(
            (base.verdict, base.unexpected),
            (Verdict::RecordsDifferent, true)
        );
        assert_eq!(
            (base.added, base.removed, base.changed as i64),
            (0, 0, ok.counts.appointments_added),
            "{base:?}"
        );
        assert!(!base.first_ids.is_empty() && base.first_ids.len() <= 5);
        assert_eq!(report.unexpected, 1);
        assert!(app
            .audit_entries(Some(5))
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == "connector.shadow" && e.target == "doctolib"));
        assert_eq!(
            app.store
                .active_connector("doctolib")
                .await
                .unwrap()
                .unwrap()
                .version,
            "0.1.0"
        );

        // The fix: drift fixed, baseline identical: it activates by itself.
        let fixed = app.install_plugin(&variant(FIXED)).await.unwrap();
        assert_eq!(fixed.outcome, Outcome::Activated, "{:?}", fixed.escalation);
        let report = fixed.shadow.expect("gated: replayed before activation");
        let verdict = |id: i64| {
            report
                .cases
                .iter()
                .find(|c| c.run_id == id)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict(drifted.id), Verdict::DriftFixed, "{report:#?}");
        assert_eq!(verdict(ok.id), Verdict::Identical, "{report:#?}");
        assert_eq!(report.unexpected, 0);
        let redriven = sim.sync(&account, Mode::Incremental).await;
        assert_eq!(redriven.status, Status::Succeeded, "{redriven:?}");
        assert_eq!(redriven.connector_version, "0.2.0");
        sim.sync(&account, Mode::Full).await;
        sim.assert_matches_truth(&account, db.name).await;
    }
}
