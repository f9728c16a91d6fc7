//! The operator console's handlers, over HTTP against a daemon wired to the simulator:
//! login and sessions, CSRF and origin refusals, scopes, every page on synced data
//! without a patient's name, phone or e-mail, and the actions (Sync now with its
//! coalescing and 429, resume, approve, upload) doing what the API does.

use passerelle_tests as common;

use common::console::Console;
use common::daemon::{daemon_config, daemon_env, run_ids, DaemonEnv, TOKEN};
use common::{databases, sim_config, variant, Db};
use passerelle::model::run::Status;
use passerelle::serve::ServeOptions;
use passerelle_sim::Faults;
use reqwest::{Method, StatusCode};

/// A daemon on `practices` simulated practices; manual syncs as often as asked when
/// `no_interval`.
async fn daemon(db: &Db, practices: usize, no_interval: bool) -> DaemonEnv {
    let mut config = daemon_config();
    if no_interval {
        config.daemon.manual_min_interval_secs = 0;
    }
    daemon_env(
        db,
        sim_config(practices, 4),
        config,
        ServeOptions::default(),
    )
    .await
}

/// Every patient string of the simulator's world (names, phones, e-mails).
fn patient_strings(d: &DaemonEnv) -> Vec<String> {
    let world = d.sim.sim.world().clone();
    let mut out = Vec::new();
    for a in world.accounts() {
        for appt in a.appointments.values() {
            let p = &appt.patient;
            // Full names (a last name alone may be a doctor's in a practice name).
            out.extend([
                format!("{} {}", p.first_name, p.last_name),
                format!("{} {}", p.last_name, p.first_name),
                p.phone.clone(),
                p.email.clone(),
            ]);
        }
    }
    out.retain(|s| s.len() >= 4);
    out
}

#[tokio::test]
async fn the_console_needs_a_login_and_refuses_forged_or_foreign_forms() {
    let db = &databases().await[0];
    let d = daemon(db, 1, false).await;
    let practice = d.practice_ids()[0].clone();
    let mut c = Console::new(&d.base);

    // The daemon's address sends to the console, without a token.
    let root = c.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), Some("/console"));
    // No session: pages send to the login, actions are refused.
    let page = c.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/console/login"));
    let refused = c
        .post_raw(&format!("/console/practices/{practice}/sync"), &[], None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let login = c.get("/console/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains(r#"type="password""#));
    // From this machine over HTTP: no word about HTTPS.
    assert!(!login.text.contains("HTTPS only"), "{}", login.text);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // A wrong token, then the right one.
    let wrong = c.login("not-the-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(c.cookie.is_none());
    let ok = c.login(TOKEN).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let set = ok.headers["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    let overview = c.get("/console").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.text.contains("<h1>Overview</h1>"));
    assert!(c.csrf.is_some());

    // An action without the CSRF token, with a wrong one, or from another origin.
    let path = format!("/console/practices/{practice}/sync");
    for (fields, origin) in [
        (vec![], None),
        (vec![("csrf", "forged")], None),
        (
            vec![("csrf", c.csrf.as_deref().unwrap())],
            Some("https://evil.example"),
        ),
    ] {
        let refused = c.post_raw(&path, &fields, origin).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    }
    assert!(
        d.sim
            .env
            .app
            .store
            .list_runs(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "a refused form queued nothing"
    );

    // A read-only token sees pages but may not act; a revoked one ends its session.
    let reader = passerelle_tests::token(&d.sim.env.app, "reader", &["read"]).await;
    let mut r = Console::new(&d.base);
    assert_eq!(r.login(&reader).await.status, StatusCode::SEE_OTHER);
    let page = r.get(&format!("/console/practices/{practice}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text.contains("Sync now"),
        "no action offered to a reader"
    );
    assert!(page.text.contains("(read only)"));
    let refused = r.post(&path, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("`admin` scope"), "{}", refused.text);
    // Refusals carry the security headers like any page.
    assert!(
        refused.headers.contains_key("content-security-policy"),
        "{:?}",
        refused.headers
    );
    let ended = Console::new(&d.base).post("/console/logout", &[]).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert!(ended.headers.contains_key("content-security-policy"));
    // A reader may end its own session; logins (let in or not) and logouts are audited.
    let mut leaving = Console::new(&d.base);
    assert_eq!(leaving.login(&reader).await.status, StatusCode::SEE_OTHER);
    let out = leaving.post("/console/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text);
    assert_eq!(
        leaving.get("/console").await.location(),
        Some("/console/login")
    );
    let wrong = Console::new(&d.base).login("pst_not-a-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let trail = d.sim.env.app.audit_entries(Some(50)).await.unwrap();
    let seen: Vec<(&str, &str)> = trail
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    for want in [
        ("token:reader", "console.login"),
        ("token:reader", "console.logout"),
        ("anonymous", "console.login-refused"),
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
    assert!(!format!("{trail:?}").contains(&reader));
    d.sim.env.app.revoke_token("reader").await.unwrap();
    let after = r.get("/console").await;
    assert_eq!(after.location(), Some("/console/login"));

    // Logging out ends the session.
    assert_eq!(
        c.post("/console/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(c.get("/console").await.location(), Some("/console/login"));
    d.shutdown().await;
}

#[tokio::test]
async fn every_page_renders_synced_data_without_patient_data() {
    for db in databases().await {
        let d = daemon(&db, 3, true).await;
        let app = d.running.daemon.app.clone();
        let practices = d.practice_ids();
        // Runs: one good sync of every practice, then one practice's account drifts.
        let mut ids = Vec::new();
        for p in &practices {
            let a = d
                .call(Method::POST, &format!("/v1/practices/{p}/sync"), None)
                .await;
            ids.extend(run_ids(&a));
        }
        d.wait_for(&ids).await;
        d.sim
            .sim
            .set_faults("doctolib", common::renamed_start_date());
        let drifted = d
            .call(
                Method::POST,
                &format!("/v1/practices/{}/sync", practices[0]),
                Some(serde_json::json!({"full": true})),
            )
            .await;
        assert_eq!(drifted.status, StatusCode::ACCEPTED, "{}", drifted.text);
        let runs = d.wait_for(&run_ids(&drifted)).await;
        assert_eq!(runs[0].status, Status::Drift);
        let paused_account = runs[0].account_id.clone();
        let run_id = runs[0].id;

        // The overview's figures: every run of the last day counted, each finished
        // run's duration in its platform's day.
        let figures = app.overview(chrono::Utc::now()).await.unwrap();
        let counted: i64 = figures.platforms.iter().map(|p| p.total).sum();
        assert_eq!(counted as usize, ids.len() + runs.len());
        let days = &figures.durations["doctolib"];
        assert_eq!(
            days.iter().map(|d| d.runs).sum::<i64>() as usize,
            counted as usize
        );
        assert!(days.iter().all(|d| d.p50_ms <= d.p95_ms));
        let quarters: i64 = figures
            .quarter_hours
            .iter()
            .map(|q| q.succeeded + q.failed + q.other)
            .sum();
        assert_eq!(quarters, counted);

        let mut c = Console::new(&d.base);
        c.login(TOKEN).await;
        let overview = c.get("/console").await;
        assert_eq!(overview.status, StatusCode::OK);
        for expected in [
            "Runs by platform",
            "doctolib",
            &paused_account,
            "<svg",
            "start_date",
        ] {
            assert!(
                overview.text.contains(expected),
                "overview lacks {expected}"
            );
        }
        // The open-data export: nothing yet, then the last export's report, with each
        // centre left out and why (the first practice has no booking URL).
        assert!(c
            .get("/console/export")
            .await
            .text
            .contains("no export yet"));
        let public = passerelle::model::public::PublicPatch {
            department: Some("75".into()),
            address: Some(Some("1 rue de la Paix".into())),
            city: Some(Some("Paris".into())),
            postcode: Some(Some("75002".into())),
            latitude: Some(Some(48.8686)),
            longitude: Some(Some(2.3308)),
            ..Default::default()
        };
        let update = passerelle::service::practices::PracticeUpdate {
            public: Some(Some(public)),
            ..Default::default()
        };
        app.update_practice(&practices[0], update, chrono::Utc::now())
            .await
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let report = app
            .export_vitemadose(out.path(), chrono::Utc::now())
            .await
            .unwrap();
        assert!(!report.left_out.is_empty());
        let page = c.get("/console/export").await;
        for l in &report.left_out {
            assert!(page.text.contains(&l.account), "{}", page.text);
        }
        assert!(page.text.contains("no booking URL"), "{}", page.text);
        let account = app.account(&paused_account).await.unwrap();
        let pages = [
            "/console/export".to_string(),
            "/console".to_string(),
            "/console/practices".to_string(),
            format!(
                "/console/practices?q={}",
                &practices[1][..practices[1].len() - 1]
            ),
            format!("/console/practices/{}", practices[0]),
            format!("/console/accounts/{paused_account}"),
            "/console/runs".to_string(),
            "/console/runs?status=drift&connector=doctolib&trigger=manual&since=2000-01-01"
                .to_string(),
            format!("/console/runs/{run_id}"),
            format!("/console/runs/{}", ids[0]),
            "/console/connectors".to_string(),
            "/console/connectors/doctolib".to_string(),
        ];
        let patients = patient_strings(&d);
        assert!(!patients.is_empty());
        for path in &pages {
            let page = c.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
            for s in &patients {
                assert!(
                    !page.text.contains(s.as_str()),
                    "{path} shows patient data ({s})"
                );
            }
        }
        // The filters narrow the log; the practice search finds by part of the id.
        let drift_only = c.get("/console/runs?status=drift").await;
        assert!(drift_only
            .text
            .contains(&format!("/console/runs/{run_id}\"")));
        assert!(!drift_only
            .text
            .contains(&format!("/console/runs/{}\"", ids[0])));
        let search = c
            .get(&format!("/console/practices?q={}", practices[1]))
            .await;
        assert!(search.text.contains("1 practice(s)"), "{}", search.text);
        let account_page = c.get(&format!("/console/accounts/{paused_account}")).await;
        assert!(account_page.text.contains("Resume"));
        assert!(account_page.text.contains(&account.practice_id));
        // A malformed filter is the service's refusal, as the API gives it.
        let bad = c.get("/console/runs?status=sleeping").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.text.contains("unknown status"), "{}", bad.text);
        let missing = c.get("/console/runs/999999").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        // Resume: the pause is lifted and a re-drive queued (the faults are gone).
        d.sim.sim.set_faults("doctolib", Faults::default());
        let resumed = c
            .post(&format!("/console/accounts/{paused_account}/resume"), &[])
            .await;
        assert_eq!(resumed.status, StatusCode::SEE_OTHER, "{}", resumed.text);
        let page = c.get(resumed.location().unwrap()).await;
        assert!(page.text.contains("resumed: run"), "{}", page.text);
        assert!(app.store.pause(&paused_account).await.unwrap().is_none());
        d.shutdown().await;
    }
}

#[tokio::test]
async fn actions_do_what_the_api_does() {
    let db = &databases().await[0];
    let d = daemon(db, 1, false).await;
    let app = d.running.daemon.app.clone();
    let practice = d.practice_ids()[0].clone();
    let mut c = Console::new(&d.base);
    c.login(TOKEN).await;

    // Sync now: queued, then (while it waits or runs) coalesced, then once it ended,
    // refused inside the minimum interval with the API's 429 and Retry-After.
    let path = format!("/console/practices/{practice}/sync");
    let first = c.post(&path, &[]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text);
    let page = c.get(first.location().unwrap()).await;
    assert!(page.text.contains("queued"), "{}", page.text);
    let runs = app.store.list_runs(&Default::default()).await.unwrap();
    let accounts = app.accounts(Some(&practice)).await.unwrap();
    assert_eq!(runs.len(), accounts.len(), "one run per account");
    d.wait_for(&runs.iter().map(|r| r.id).collect::<Vec<_>>())
        .await;
    let again = c.post(&path, &[]).await;
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        again.text
    );
    assert!(again.headers.contains_key("retry-after"));

    // Upload a version asking for more: it waits; approve it from its page.
    app.install_plugin(&common::component("testing"))
        .await
        .unwrap();
    let bytes = std::fs::read(variant("testing-0.2.0-escalate.wasm")).unwrap();
    let up = c.upload(bytes).await;
    assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.text);
    let page = c.get(up.location().unwrap()).await;
    assert!(page.text.contains("waiting for approval"), "{}", page.text);
    assert!(page.text.contains("https://extra.testing.example"));
    assert!(page.text.contains("extra-key"));
    let approved = c
        .post(
            "/console/connectors/testing/approve",
            &[("version", "0.2.0")],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.text);
    let active = app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.2.0");
    // Rollback, and a refusal the service makes (nothing to approve).
    let back = c.post("/console/connectors/testing/rollback", &[]).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text);
    let active = app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.1.0");
    let conflict = c
        .post(
            "/console/connectors/testing/approve",
            &[("version", "0.1.0")],
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    // Not a component: refused with the check's reason, listed among rejections.
    let junk = c.upload(b"not wasm".to_vec()).await;
    assert_eq!(
        junk.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        junk.text
    );
    let list = c.get("/console/connectors").await;
    assert!(list.text.contains("not-a-component"), "{}", list.text);
    // The audit trail names the token the console acted as.
    let audit = app.audit_entries(Some(50)).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "token:admin" && e.detail.contains("approved by the operator")),
        "{audit:?}"
    );
    d.shutdown().await;
}
