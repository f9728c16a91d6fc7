//! The command line, locally and against a daemon (`--server`): every command both ways
//! on the same data gives the same output; one-shot commands print no INFO logs and end
//! quietly on a closed pipe; two `passerelle sync` of one account at once (two processes
//! on one database) — the second is refused, on SQLite and PostgreSQL.

use std::path::Path;
use std::time::Duration;

use passerelle::model::run::{Run, Status};
use passerelle::serve::ServeOptions;
use passerelle_sim::Faults;
use passerelle_tests::daemon::{binary, daemon_config, daemon_env, write_config, TOKEN};
use passerelle_tests::{databases, sim_config, sim_env, variant};

/// What a command printed.
#[derive(Debug)]
struct Printed {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl From<std::process::Output> for Printed {
    fn from(out: std::process::Output) -> Printed {
        Printed {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

async fn run(cmd: std::process::Command) -> Printed {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || cmd.output().expect("run passerelle"))
        .await
        .unwrap()
        .into()
}

/// The configuration a local command needs to reach the same database and simulator.
fn local_command(data_dir: &Path, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("PASSERELLE_TEST_SECRET", "s3cret-value")
        .env_remove("RUST_LOG")
        .env_remove("PASSERELLE_SERVER");
    cmd
}

/// A command against the daemon at `base`.
fn remote_command(base: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["--server", base, "--token", TOKEN])
        .env("PASSERELLE_TEST_SECRET", "s3cret-value")
        .env_remove("RUST_LOG");
    cmd
}

/// `base` (program, arguments and environment) with `args` after its arguments.
fn clone_command(base: &std::process::Command, args: Vec<String>) -> std::process::Command {
    let mut cmd = std::process::Command::new(base.get_program());
    cmd.args(base.get_args()).args(args);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// Runs `cmd` with `input` on its standard input.
async fn run_with_stdin(mut cmd: std::process::Command, input: String) -> Printed {
    use std::io::Write;
    use std::process::Stdio;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run passerelle");
        // A command that reads nothing may be gone already: its pipe then breaks.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().expect("run passerelle")
    })
    .await
    .unwrap()
    .into()
}

/// A run table reduced to what both ways must agree on (run ids and durations differ).
fn run_rows(table: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            if cells.len() >= 13 && cells[0].parse::<i64>().is_ok() {
                // status, account, connector and version, mode, trigger
                cells[1..7].join(" ")
            } else {
                l.trim().to_string()
            }
        })
        .collect()
}

#[tokio::test]
async fn every_command_gives_the_same_output_locally_and_with_server() {
    let db = &databases().await[0];
    // The same practice is synced both ways below: no minimum interval between manual
    // syncs here (it holds both ways: `sync_now_is_one_rule_…`).
    let mut config = daemon_config();
    config.daemon.manual_min_interval_secs = 0;
    let d = daemon_env(db, sim_config(2, 15), config, ServeOptions::default()).await;
    let data_dir = d.sim.env.data_dir();
    let config = write_config(&data_dir, &d.sim.env.app.config);
    let practices = d.practice_ids();
    let (p1, p2) = (practices[0].clone(), practices[1].clone());
    let account = d.sim.sim.world().practices[0].accounts[0].id.clone();
    let local = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(local_command(&data_dir, &config, &args))
    };
    let remote = |args: Vec<String>| {
        let mut cmd = remote_command(&d.base);
        cmd.args(&args);
        run(cmd)
    };
    // Words, with 'quoted words' kept together (cron expressions).
    let args = |s: &str| -> Vec<String> {
        s.split('\'')
            .enumerate()
            .flat_map(|(i, part)| {
                if i % 2 == 1 {
                    vec![part.to_string()]
                } else {
                    part.split_whitespace().map(str::to_string).collect()
                }
            })
            .collect()
    };

    // The same command both ways: the same exit status, stdout and error message.
    let mut compared = 0;
    for cmd in [
        "practices list",
        "practices list --json",
        &format!("accounts list --practice {p1}"),
        "accounts list",
        "accounts list --json",
        "accounts paused",
        "accounts quarantined",
        &format!("accounts resume {account}"),
        "accounts resume nobody",
        &format!("accounts check {account}"),
        "accounts check nobody",
        &format!("accounts add z9 --practice {p1} --connector doctolib --setting colour=blue"),
        "plugins list",
        "plugins rejections",
        "plugins approve doctolib 0.1.0",
        "plugins rollback doctolib",
        "plugins promote doctolib",
        "plugins stop-canary doctolib",
        "plugins canary doctolib 9.9.9 --practice nowhere",
        &format!("runs --practice {p1}"),
        "runs --json --limit 3",
        "runs --status great",
        "sync nowhere",
        &format!("sync {p1} --account nobody"),
        &format!("practices set-schedule {p1} 61"),
        &format!("practices add {p1} --name again"),
        "practices add bad! --name x",
        "changes --limit 5",
        "changes --kind slot --limit 3 --json",
        "changes --kind nothing",
        "changes --after 999999999",
        "subscriptions list",
        "subscriptions replay nosuch --after 0",
        "subscriptions add ftp://example.org/hook",
        &format!("practices set-public {p1} --department 999"),
        // Not published yet: a first record needs its department.
        &format!("practices set-public {p1} --city Lyon"),
        &format!("practices show {p1}"),
        &format!("accounts show {account}"),
        "accounts show nobody",
        // Its check refuses it (no centre): nothing stored, the same words both ways.
        &format!("accounts add z8 --practice {p1} --connector doctolib"),
        "accounts show z8",
        &format!("accounts remove {account}"),
        "accounts remove nobody --with-data",
        "accounts update nobody --label x",
        // A change its check would refuse changes nothing.
        &format!("accounts update {account} --unset-setting centre"),
        &format!("accounts show {account}"),
    ] {
        let (l, r) = (local(args(cmd)).await, remote(args(cmd)).await);
        assert_eq!(l.ok, r.ok, "`{cmd}`: local {l:?}, remote {r:?}");
        assert_eq!(l.stdout, r.stdout, "`{cmd}`");
        if !l.ok {
            assert!(l.stderr.starts_with("error: "), "`{cmd}`: {}", l.stderr);
            assert_eq!(l.stderr, r.stderr, "`{cmd}`");
        }
        compared += 1;
    }
    assert_eq!(compared, 46);

    // An account of the simulator is complete: its check passes (the connector's own
    // check() included); a setting the connector does not declare is refused.
    let l = local(args(&format!("accounts check {account}"))).await;
    assert!(l.ok && l.stdout.contains(": ok (connector 0.1.0)"), "{l:?}");
    let l = local(args(&format!(
        "accounts add z9 --practice {p1} --connector doctolib --setting colour=blue"
    )))
    .await;
    assert!(
        l.stderr
            .contains("declares no setting `colour`; its settings are: centre, profile-id"),
        "{l:?}"
    );

    // Commands that change something: done once each way, on different ids; the
    // outputs are equal once the ids are swapped.
    for (template, ids) in [
        (
            "practices add {} --name Cabinet --schedule '15 4 * * 1-5'",
            ["c-local", "c-remote"],
        ),
        (
            "practices set-schedule {} '30 2 * * *'",
            ["c-local", "c-remote"],
        ),
        (
            "practices set-schedule {} --default",
            ["c-local", "c-remote"],
        ),
        (
            "practices set-public {} --department 2A --city Ajaccio --latitude -41.9 --type drugstore",
            ["c-local", "c-remote"],
        ),
        // Merged: the city stays, the type goes, the address comes.
        (
            "practices set-public {} --address '1 cours Napoléon' --unset type",
            ["c-local", "c-remote"],
        ),
        (
            "accounts add {} --practice {p} --connector doctolib --setting centre=x",
            ["a-local", "a-remote"],
        ),
        (
            "accounts add {}-x --practice {p} --connector not-installed",
            ["a-local", "a-remote"],
        ),
        (
            "accounts set-secret {} api-token --from-env PASSERELLE_TEST_SECRET",
            ["a-local", "a-remote"],
        ),
        (
            "accounts set-public {} --booking-url https://booking.example/a --type drugstore",
            ["a-local", "a-remote"],
        ),
        // With the api-token secret doctolib needs a profile id: given, the check passes.
        (
            "accounts update {} --setting profile-id=7 --label Cabinet",
            ["a-local", "a-remote"],
        ),
        (
            "accounts update {} --unset-setting profile-id --no-label --force",
            ["a-local", "a-remote"],
        ),
        ("accounts remove {}-x --with-data", ["a-local", "a-remote"]),
    ] {
        let practice = |id: &str| {
            if id.ends_with("local") {
                "c-local"
            } else {
                "c-remote"
            }
        };
        let fill = |id: &str| template.replace("{p}", practice(id)).replace("{}", id);
        let l = local(args(&fill(ids[0]))).await;
        let r = remote(args(&fill(ids[1]))).await;
        assert!(l.ok && r.ok, "{template}: {l:?} {r:?}");
        // Each practice has its own offset in the spread window: its next sync differs.
        let same = |out: &str, id: &str, p: &str| {
            out.replace(id, "ID")
                .replace(p, "P")
                .lines()
                .map(|l| l.split(", next sync").next().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            same(&l.stdout, ids[0], "c-local"),
            same(&r.stdout, ids[1], "c-remote"),
            "{template}"
        );
    }
    // The forced change kept its failing check; the removed accounts are gone.
    let shown = local(args("accounts show a-local")).await;
    assert!(!shown.stdout.contains("profile-id"), "{shown:?}");
    for gone in ["accounts show a-local-x", "accounts show a-remote-x"] {
        let l = local(args(gone)).await;
        assert!(!l.ok && l.stderr.contains("no account"), "{gone}: {l:?}");
    }

    // A secret given at `accounts add` is read from standard input (one line per
    // --secret), seen by the check before anything is stored, and never printed.
    let value = "stdin-token-value-42";
    for (command, id) in [
        (local_command(&data_dir, &config, &[]), "s-local"),
        (remote_command(&d.base), "s-remote"),
    ] {
        let add = |extra: &str| {
            args(&format!(
                "accounts add {id} --practice c-local --connector doctolib --setting centre=x --secret api-token{extra}"
            ))
        };
        let refused = run_with_stdin(clone_command(&command, add("")), format!("{value}\n")).await;
        assert!(
            !refused.ok
                && refused.stderr.contains("fails its check")
                && refused.stderr.contains("--force"),
            "{refused:?}"
        );
        let added = run_with_stdin(
            clone_command(&command, add(" --setting profile-id=3")),
            format!("{value}\n"),
        )
        .await;
        assert!(
            added.ok && added.stdout.contains(&format!("check of {id}: ok")),
            "{added:?}"
        );
        let none = run_with_stdin(clone_command(&command, add("")), String::new()).await;
        assert!(
            !none.ok && none.stderr.contains("no value for secret `api-token`"),
            "{none:?}"
        );
        let shown = run_with_stdin(
            clone_command(&command, args(&format!("accounts show {id}"))),
            String::new(),
        )
        .await;
        assert!(shown.stdout.contains("api-token"), "{shown:?}");
        for out in [&refused, &added, &none, &shown] {
            assert!(!out.stdout.contains(value) && !out.stderr.contains(value));
        }
    }

    // What set-public left, shown: merged over the earlier record.
    let shown = local(args("practices show c-local")).await;
    for kept in [
        "department   2A",
        "city         Ajaccio",
        "address      1 cours Napoléon",
        "type         (none)",
    ] {
        assert!(shown.stdout.contains(kept), "{kept}: {shown:?}");
    }
    let shown = remote(args("accounts show a-remote")).await;
    assert!(
        shown
            .stdout
            .contains("booking URL  https://booking.example/a")
            && shown.stdout.contains("type         drugstore"),
        "{shown:?}"
    );
    for (what, list) in [("practice", "practices list"), ("account", "accounts list")] {
        let (l, r) = (local(args(list)).await, remote(args(list)).await);
        assert_eq!(l.stdout, r.stdout, "{what}s both ways");
        assert!(l.stdout.contains("-local") && l.stdout.contains("-remote"));
    }

    // Syncs: the same runs, finished, both ways (ids and durations aside).
    let sync = format!("sync {p2} --full");
    let (l, r) = (local(args(&sync)).await, remote(args(&sync)).await);
    assert!(l.ok && r.ok, "{l:?} {r:?}");
    assert_eq!(run_rows(&l.stdout), run_rows(&r.stdout));
    assert!(l.stdout.contains("succeeded"), "{}", l.stdout);

    // What the sync stored: appointments (initials) and slots, the same both ways, a
    // page at a time.
    let synced = d.sim.sim.world().practices[1].accounts[0].id.clone();
    for read in [
        format!("appointments --practice {p2} --limit 3"),
        format!("appointments --account {synced} --limit 100"),
        format!("slots --account {synced} --limit 4"),
    ] {
        let (l, r) = (local(args(&read)).await, remote(args(&read)).await);
        assert!(l.ok && r.ok, "{read}: {l:?} {r:?}");
        assert_eq!(l.stdout, r.stdout, "{read}");
        assert!(l.stdout.lines().count() > 1, "{read}: {}", l.stdout);
    }
    let paged = local(args(&format!("appointments --practice {p2} --limit 3"))).await;
    assert!(
        paged.stdout.contains("… more: --after "),
        "{}",
        paged.stdout
    );

    // Connector versions: install, canary, stop, promote, rollback, both ways.
    let fixed = variant("doctolib-0.2.0-start-date-v2.wasm");
    let install = vec![
        "plugins".into(),
        "install".into(),
        fixed.display().to_string(),
    ];
    let l = local(install.clone()).await;
    assert!(
        l.ok && l.stdout.contains("installed and activated (was 0.1.0)"),
        "{l:?}"
    );
    let r = remote(install).await;
    assert!(r.ok && r.stdout.contains("already installed"), "{r:?}");
    let l = local(args("plugins rollback doctolib")).await;
    let r = remote(args("plugins rollback doctolib 0.2.0")).await;
    assert!(l.ok && r.ok, "{l:?} {r:?}");
    assert_eq!(
        (
            l.stdout.contains("0.1.0 is active (was 0.2.0)"),
            r.stdout.contains("0.2.0 is active (was 0.1.0)")
        ),
        (true, true)
    );
    local(args("plugins rollback doctolib")).await;
    let canary = format!("plugins canary doctolib 0.2.0 --practice {p1}");
    let (l, r) = (local(args(&canary)).await, remote(args(&canary)).await);
    assert!(l.ok && l.stdout.contains("runs as a canary for"), "{l:?}");
    assert_eq!(l.stdout, r.stdout);
    let stop = "plugins stop-canary doctolib";
    let (l, r) = (local(args(stop)).await, remote(args(stop)).await);
    assert!(
        l.ok && l.stdout.contains("canary of doctolib stopped"),
        "{l:?}"
    );
    assert!(!r.ok && r.stderr.contains("has no canary running"), "{r:?}");
    let l = local(args(&canary)).await;
    let promoted = remote(args("plugins promote doctolib")).await;
    assert!(l.ok && promoted.ok, "{l:?} {promoted:?}");
    assert!(promoted
        .stdout
        .contains("doctolib 0.2.0 is active (was 0.1.0)"));

    // The log level of one-shot commands: warnings only.
    let l = local(args("runs")).await;
    assert!(!l.stderr.contains("INFO"), "{}", l.stderr);
    d.shutdown().await;
}

/// "Sync now" is one rule wherever it is asked — a local `passerelle sync`, a `--server`
/// sync, the API's `POST /v1/practices/{id}/sync`: the same audit entry, and the same
/// minimum interval between manual runs of an account whichever way came first.
#[tokio::test]
async fn sync_now_is_one_rule_locally_with_server_and_through_the_api() {
    use reqwest::Method;
    for db in databases().await {
        let d = daemon_env(
            &db,
            sim_config(3, 5),
            daemon_config(),
            ServeOptions::default(),
        )
        .await;
        let data_dir = d.sim.env.data_dir();
        let config = write_config(&data_dir, &d.sim.env.app.config);
        let local = |args: &[&str]| run(local_command(&data_dir, &config, args));
        let remote = |args: &[&str]| {
            let mut cmd = std::process::Command::new(binary());
            cmd.args(["--server", &d.base, "--token", TOKEN])
                .args(args)
                .env_remove("RUST_LOG");
            run(cmd)
        };
        let world = d.sim.sim.world().clone();
        let (p, a): (Vec<String>, Vec<String>) = world
            .practices
            .iter()
            .take(3)
            .map(|p| (p.id.clone(), p.accounts[0].id.clone()))
            .unzip();
        let api_sync = |practice: &str, account: &str| {
            let path = format!("/v1/practices/{practice}/sync");
            let body = serde_json::json!({"account": account});
            let d = &d;
            async move { d.call(Method::POST, &path, Some(body)).await }
        };
        let too_soon = |account: &str| {
            format!("a manual sync of account `{account}` was requested less than 60 s ago")
        };

        // First here, then through the daemon both ways: refused.
        let first = local(&["sync", &p[0], "--account", &a[0]]).await;
        assert!(first.ok, "{}: {first:?}", db.name);
        let again = remote(&["sync", &p[0], "--account", &a[0]]).await;
        assert!(
            !again.ok && again.stderr.contains(&too_soon(&a[0])),
            "{}: {again:?}",
            db.name
        );
        let answer = api_sync(&p[0], &a[0]).await;
        assert_eq!(answer.status.as_u16(), 429, "{}: {}", db.name, answer.text);
        assert!(answer.headers.contains_key("retry-after"));

        // First with --server, then here: refused.
        let first = remote(&["sync", &p[1], "--account", &a[1]]).await;
        assert!(first.ok, "{}: {first:?}", db.name);
        let again = local(&["sync", &p[1], "--account", &a[1]]).await;
        assert!(
            !again.ok && again.stderr.contains(&too_soon(&a[1])),
            "{}: {again:?}",
            db.name
        );

        // First through the API, then here once its run is over: refused.
        let answer = api_sync(&p[2], &a[2]).await;
        assert_eq!(answer.status.as_u16(), 202, "{}: {}", db.name, answer.text);
        let body: serde_json::Value = serde_json::from_str(&answer.text).unwrap();
        let id = body["runs"][0]["run_id"].as_i64().unwrap();
        d.wait_for(&[id]).await;
        let again = local(&["sync", &p[2], "--account", &a[2]]).await;
        assert!(
            !again.ok && again.stderr.contains(&too_soon(&a[2])),
            "{}: {again:?}",
            db.name
        );

        // One audit entry per accepted request, the same whichever way it came.
        let entries = d.sim.env.app.store.audit_entries(100).await.unwrap();
        let syncs: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "sync.request")
            .collect();
        assert_eq!(syncs.len(), 3, "{}: {syncs:?}", db.name);
        for (practice, account) in p.iter().zip(&a) {
            let entry = syncs
                .iter()
                .find(|e| &e.target == practice)
                .unwrap_or_else(|| panic!("{}: no sync.request for {practice}", db.name));
            let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
            assert_eq!(detail["account"], account.as_str(), "{}", db.name);
            assert_eq!(detail["full"], false);
            assert_eq!(detail["runs"].as_array().map(Vec::len), Some(1), "{detail}");
        }
        d.shutdown().await;
    }
}

#[tokio::test]
async fn a_closed_pipe_ends_the_output_quietly() {
    let db = &databases().await[0];
    let e = sim_env(db, sim_config(1, 200)).await;
    let account = e.sim.world().practices[0].accounts[0].id.clone();
    e.sync(&account, passerelle::model::run::Mode::Full).await;
    let config = write_config(&e.env.data_dir(), &e.env.app.config);
    let practice = e.sim.world().practices[0].id.clone();
    let mut cmd = local_command(
        &e.env.data_dir(),
        &config,
        &["appointments", "--practice", &practice, "--limit", "10000"],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Read one line, then close the pipe: the command must not panic.
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with("account"), "{first}");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[tokio::test]
async fn a_second_sync_of_a_running_account_is_refused() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 40)).await;
        let practice = e.sim.world().practices[0].id.clone();
        let account = e.sim.world().practices[0].accounts[0].id.clone();
        // Every platform answer takes a while: the first sync is still running when the
        // second starts.
        e.sim.set_faults(
            "doctolib",
            Faults {
                latency_ms: 700,
                ..Faults::default()
            },
        );
        let config = write_config(&e.env.data_dir(), &e.env.app.config);
        let data_dir = e.env.data_dir();
        let sync = [
            "sync",
            practice.as_str(),
            "--account",
            account.as_str(),
            "--full",
        ];
        let first = tokio::spawn(run(local_command(&data_dir, &config, &sync)));
        // Wait for the first run to be recorded running (an event, not a delay).
        let store = &e.env.app.store;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let running: Run = loop {
            let runs = store
                .list_runs(&passerelle::model::run::RunFilter {
                    account_id: Some(account.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            if let Some(r) = runs.into_iter().find(|r| r.status == Status::Running) {
                break r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: the first sync never ran",
                db.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let second = run(local_command(&data_dir, &config, &sync)).await;
        assert!(!second.ok, "{}: {second:?}", db.name);
        assert!(
            second.stderr.contains(&format!(
                "account `{account}` is already running: run {}",
                running.id
            )),
            "{}: {}",
            db.name,
            second.stderr
        );
        let first = first.await.unwrap();
        assert!(first.ok, "{}: {first:?}", db.name);
        // The refused sync recorded nothing; the first one succeeded.
        let runs = store
            .list_runs(&passerelle::model::run::RunFilter {
                account_id: Some(account.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(runs.len(), 1, "{}: {runs:?}", db.name);
        assert_eq!(runs[0].status, Status::Succeeded);
    }
}

/// Records a `running` run of `account` owned by `owner`, as a process would.
async fn running_row(
    store: &passerelle::store::Store,
    practice: &str,
    account: &str,
    owner: &str,
) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO runs (practice_id, account_id, connector, connector_version, connector_sha256,
            trigger, mode, status, started_at, owner)
         VALUES ($1, $2, 'doctolib', '0.1.0', 'x', 'manual', 'full', 'running', '2026-01-01T00:00:00.000Z', $3)
         RETURNING id",
    )
    .bind(practice)
    .bind(account)
    .bind(owner)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_left_running_by_a_process_that_is_gone_does_not_block_its_account() {
    use passerelle::store::runs::process_owner;
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 5)).await;
        let practice = e.sim.world().practices[0].id.clone();
        let account = e.sim.world().practices[0].accounts[0].id.clone();
        let store = &e.env.app.store;
        let host = process_owner().rsplit_once('/').unwrap().0.to_string();
        let synced = |mode| {
            let app = &e.env.app;
            let account = account.clone();
            async move {
                let a = app.account(&account).await.unwrap();
                app.sync_account(
                    &a,
                    passerelle::service::sync::SyncOptions {
                        trigger: passerelle::model::run::Trigger::Manual,
                        mode,
                        now: None,
                        record: None,
                    },
                )
                .await
            }
        };
        // Owned by this process (alive): the account is busy.
        let live = running_row(store, &practice, &account, process_owner()).await;
        let refused = synced(passerelle::model::run::Mode::Full)
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains(&format!("is already running: run {live}")),
            "{refused}"
        );
        sqlx::query("UPDATE runs SET status = 'cancelled' WHERE id = $1")
            .bind(live)
            .execute(store.pool())
            .await
            .unwrap();
        // Owned by another host: never judged from here.
        let elsewhere = running_row(store, &practice, &account, "another-host/1").await;
        assert!(synced(passerelle::model::run::Mode::Full).await.is_err());
        sqlx::query("UPDATE runs SET status = 'cancelled' WHERE id = $1")
            .bind(elsewhere)
            .execute(store.pool())
            .await
            .unwrap();
        // Owned by a pid that cannot exist on this host (beyond Linux's pid_max): the
        // run is closed as interrupted, and the new one runs.
        let gone = running_row(store, &practice, &account, &format!("{host}/4194304")).await;
        let run = synced(passerelle::model::run::Mode::Full).await.unwrap();
        assert_eq!(run.status, Status::Succeeded, "{}", db.name);
        let old = store.run(gone).await.unwrap().unwrap();
        assert_eq!(old.status, Status::Cancelled);
        assert!(old.error_detail.unwrap().contains("is gone"));
        // Ended by the run recorder, like every run: counted by the run-ended metric.
        let metrics = e.env.app.metrics.render();
        assert!(
            metrics.contains(
                r#"passerelle_runs_total{connector="doctolib",status="cancelled",trigger="manual"} 1"#
            ),
            "{}: {metrics}",
            db.name
        );
    }
}

/// An error that quotes outside text (here an id with a terminal escape sequence) prints
/// it escaped: nothing the operator's terminal would act on.
#[tokio::test]
async fn an_error_quoting_outside_text_prints_no_control_character() {
    let db = &databases().await[0];
    let e = sim_env(db, sim_config(1, 10)).await;
    let config = write_config(&e.env.data_dir(), &e.env.app.config);
    let hostile = "p\u{1b}]0;pwned\u{7}";
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["practices", "set-schedule", hostile, "--default"],
    ))
    .await;
    assert!(!out.ok, "{out:?}");
    assert!(
        !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{out:?}"
    );
    assert!(out.stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{out:?}");
}

/// `secrets rotate-key` runs on the daemon's machine only, and says what it did.
#[tokio::test]
async fn the_secrets_key_rotates_from_the_command_line() {
    let db = &databases().await[0];
    let e = sim_env(db, sim_config(1, 10)).await;
    let config = write_config(&e.env.data_dir(), &e.env.app.config);
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["--server", "http://127.0.0.1:9", "secrets", "rotate-key"],
    ))
    .await;
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr.contains("`secrets` reads or changes files"),
        "{out:?}"
    );
    let before = e.env.app.keyring.key_id().to_string();
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["secrets", "rotate-key"],
    ))
    .await;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("secret(s) sealed under key"), "{out:?}");
    assert!(!out.stdout.contains(&before), "{out:?}");
    assert!(e.env.data_dir().join("secrets.key.previous").exists());

    // The rotation is in the audit trail, as this machine's user's; `audit verify`
    // passes, then fails once an entry is edited.
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["audit", "list"],
    ))
    .await;
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout.contains("local:") && out.stdout.contains("secrets.rotate-key"),
        "{out:?}"
    );
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["audit", "verify"],
    ))
    .await;
    assert!(out.ok && out.stdout.contains("chain intact"), "{out:?}");
    sqlx::query("UPDATE audit_log SET detail = '{}' WHERE seq = 1")
        .execute(e.env.app.store.pool())
        .await
        .unwrap();
    let out = run(local_command(
        &e.env.data_dir(),
        &config,
        &["audit", "verify"],
    ))
    .await;
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stdout.contains("broken: entry 1 was altered"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("the audit trail is broken in 1 place(s)"),
        "{out:?}"
    );
}

/// Connectors' requests never go through a proxy from the environment: a proxy would
/// resolve names itself, past the private-address and rebinding guard. With
/// `HTTP(S)_PROXY`/`ALL_PROXY` pointing at a closed port, a sync still reaches the
/// platform directly (before, it went to the proxy and failed).
#[tokio::test]
async fn a_proxy_in_the_environment_is_not_used_by_connectors() {
    let db = &databases().await[0];
    let e = sim_env(db, sim_config(1, 10)).await;
    let config = write_config(&e.env.data_dir(), &e.env.app.config);
    let practice = e.sim.world().practices[0].id.clone();
    let mut cmd = local_command(&e.env.data_dir(), &config, &["sync", &practice]);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    let out = run(cmd).await;
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("succeeded"), "{out:?}");
}

/// What the CLI prints of outside text: control characters and bidirectional overrides
/// escaped, everything else as is.
#[test]
fn printable_escapes_controls_and_bidi_overrides_only() {
    use passerelle::cli::printable::printable;
    assert_eq!(printable("plain é text"), "plain é text");
    assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    assert_eq!(printable("evil\u{202E}txt.exe"), "evil\\u{202e}txt.exe");
    assert_eq!(printable("x\u{2066}y"), "x\\u{2066}y");
}

/// A manifest's names are identifiers and its free text holds no terminal control or
/// bidirectional mark: what it says reaches terminals, pages and the audit trail.
#[test]
fn a_manifest_with_unprintable_names_or_text_is_refused() {
    use passerelle::model::connector::{Manifest, Parameter, RateLimit};
    use passerelle::service::plugins::validate_manifest;
    let param = |name: &str, description: &str| Parameter {
        name: name.into(),
        description: description.into(),
        required: true,
    };
    let good = Manifest {
        name: "acme".into(),
        version: "1.0.0".into(),
        platform: "Acme".into(),
        allowed_hosts: vec!["https://acme.example".into()],
        rate_limit: RateLimit {
            requests_per_second: 2,
            burst: 2,
        },
        settings: vec![param("centre", "The centre's id")],
        secrets: vec![param("api-token", "The API token")],
    };
    validate_manifest(&good).unwrap();
    let bad = [
        Manifest {
            settings: vec![param("centre\x1b[2J", "x")],
            ..good.clone()
        },
        Manifest {
            secrets: vec![param("token name", "x")],
            ..good.clone()
        },
        Manifest {
            secrets: vec![param("api-token", "ok\u{202E}kO")],
            ..good.clone()
        },
        Manifest {
            platform: "Acme\n[approved]".into(),
            ..good.clone()
        },
    ];
    for m in bad {
        assert!(validate_manifest(&m).is_err(), "{m:?}");
    }
}

/// Shell completions and manual pages come from the same definitions as `--help`.
#[test]
fn completions_and_manual_pages_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let ran = passerelle_tests::kit::passerelle(&["completions", shell]);
        assert_eq!(ran.code, 0, "{shell}: {}", ran.stderr);
        for word in ["set-public", "rotate-key", "vitemadose"] {
            assert!(ran.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ran = passerelle_tests::kit::passerelle(&["man", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for page in [
        "passerelle.1",
        "passerelle-practices-set-public.1",
        "passerelle-accounts-set-secret.1",
        "passerelle-export-vitemadose.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is no manual page");
    }
    let main = passerelle_tests::kit::passerelle(&["man"]);
    assert!(main.stdout.contains(".TH passerelle"), "{}", main.stdout);
}
