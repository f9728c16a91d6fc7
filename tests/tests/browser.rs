//! The console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini) against a daemon wired to the simulator with the
//! demo's platforms. Logs in, opens the overview after the syncs, presses "Sync now" and
//! watches the run appear and end, approves a waiting version, and saves a screenshot
//! of each page under `target/console-screenshots/`.
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver`
//! packages (`cargo xtask test` installs them when run as root on Debian);
//! `PASSERELLE_TEST_CHROMEDRIVER` names another chromedriver. Without one the test says
//! it is skipped — except in CI, where it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use passerelle_tests as common;

use common::daemon::{daemon_config, daemon_env, run_ids, TOKEN};
use common::{databases, variant};
use fantoccini::{Client, ClientBuilder, Locator};
use passerelle::model::run::Status;
use passerelle::serve::ServeOptions;
use passerelle_sim::{Faults, SimConfig};
use reqwest::{Method, StatusCode};

fn chromedriver() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PASSERELLE_TEST_CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from("/usr/bin/chromedriver");
    default.exists().then_some(default)
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &PathBuf) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Wrapped at once: dropping the driver kills the process on every path.
    let driver = Driver {
        child: Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display())),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let mut options = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1100", "--no-first-run", "--no-proxy-server"],
    });
    if let Some(binary) = std::env::var_os("PASSERELLE_TEST_CHROMIUM") {
        options["binary"] = serde_json::json!(binary.to_string_lossy());
    } else if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = serde_json::json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a headless Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn text(client: &Client) -> String {
    // Right after a click the old page may still be there, or go while it is read.
    let mut last = None;
    for _ in 0..100 {
        let read = async {
            client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css("main"))
                .await?
                .text()
                .await
        };
        match read.await {
            Ok(t) => return t,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page could not be read: {last:?}");
}

/// The page's text once it shows `wanted` (polling up to 30 s: a click returns before
/// the next page is there), or the last text read, for the assertion to show.
async fn text_showing(client: &Client, wanted: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let page = text(client).await;
        if page.contains(wanted) || started.elapsed() > Duration::from_secs(30) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (polling, up to 60 s) until the page at `url` shows `wanted`, reloading it.
async fn wait_for_text(client: &Client, url: &str, wanted: &str) -> String {
    for _ in 0..120 {
        client.goto(url).await.unwrap();
        let body = text(client).await;
        if body.contains(wanted) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{url} never showed {wanted:?}: {}", text(client).await);
}

#[tokio::test]
async fn an_operator_uses_the_console_in_a_real_browser() {
    let Some(driver_path) = chromedriver() else {
        assert!(
            !in_ci(),
            "no chromedriver: CI must run the browser test (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: no chromedriver (apt-get install chromium chromium-driver, or set PASSERELLE_TEST_CHROMEDRIVER)");
        return;
    };
    let db = &databases().await[0];
    let mut config = daemon_config();
    config.daemon.manual_min_interval_secs = 0;
    let d = daemon_env(
        db,
        SimConfig {
            seed: 7,
            practices: 4,
            appointments_per_account: 6,
            epoch: Some(passerelle_sim::world::current_hour()),
            ..SimConfig::default()
        },
        config,
        ServeOptions::default(),
    )
    .await;
    let app = d.running.daemon.app.clone();
    // The demo's night: every practice synced, then one platform drifts for one.
    let practices = d.practice_ids();
    let mut ids = Vec::new();
    for p in &practices {
        let a = d
            .call(Method::POST, &format!("/v1/practices/{p}/sync"), None)
            .await;
        ids.extend(run_ids(&a));
    }
    d.wait_for(&ids).await;
    let world = d.sim.sim.world().clone();
    let doctolib_practice = world
        .practices
        .iter()
        .find(|p| {
            p.accounts
                .iter()
                .any(|a| a.platform == passerelle_sim::Platform::Doctolib)
        })
        .expect("a Doctolib practice")
        .id
        .clone();
    d.sim
        .sim
        .set_faults("doctolib", common::renamed_start_date());
    let drifted = d
        .call(
            Method::POST,
            &format!("/v1/practices/{doctolib_practice}/sync"),
            Some(serde_json::json!({"full": true})),
        )
        .await;
    let drifted = d.wait_for(&run_ids(&drifted)).await;
    assert!(drifted.iter().any(|r| r.status == Status::Drift));
    d.sim.sim.set_faults("doctolib", Faults::default());
    // A version waiting for approval.
    app.install_plugin(&common::component("testing"))
        .await
        .unwrap();
    let up = d
        .upload(
            "/v1/connectors/testing/versions",
            std::fs::read(variant("testing-0.2.0-escalate.wasm")).unwrap(),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let driver = start_driver(&driver_path).await;
    let client = browser(&driver).await;
    let base = d.base.clone();

    // Log in.
    client.goto(&format!("{base}/console")).await.unwrap();
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    shot(&client, "login").await;
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    client
        .find(Locator::Css("main.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let overview = text_showing(&client, "Runs by platform").await;
    assert!(overview.contains("Runs by platform"), "{overview}");
    for platform in ["doctolib", "keldoc", "maiia"] {
        assert!(overview.contains(platform), "overview lacks {platform}");
    }
    assert!(overview.contains("Accounts paused"));
    assert!(overview.contains("start_date"), "the drift report is shown");
    shot(&client, "overview").await;

    client
        .goto(&format!("{base}/console/practices"))
        .await
        .unwrap();
    shot(&client, "practices").await;

    // Sync now on a practice, and watch the run appear in the log and end.
    let practice = practices
        .iter()
        .find(|p| **p != doctolib_practice)
        .unwrap()
        .clone();
    client
        .goto(&format!("{base}/console/practices/{practice}"))
        .await
        .unwrap();
    let before = app.store.list_runs(&Default::default()).await.unwrap();
    let newest_before = before.first().map_or(0, |r| r.id);
    client
        .find(Locator::XPath("//button[normalize-space()='Sync now']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let after = text_showing(&client, "Sync now —").await;
    assert!(after.contains("Sync now —"), "{after}");
    shot(&client, "practice").await;
    let new_run = app
        .store
        .list_runs(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id > newest_before && r.practice_id == practice)
        .expect("the console queued a run");
    let runs_page = wait_for_text(
        &client,
        &format!("{base}/console/runs?practice={practice}"),
        &new_run.id.to_string(),
    )
    .await;
    assert!(runs_page.contains(&new_run.account_id));
    shot(&client, "runs").await;
    let detail = wait_for_text(
        &client,
        &format!("{base}/console/runs/{}", new_run.id),
        "succeeded",
    )
    .await;
    assert!(detail.contains("Component hash"), "{detail}");
    shot(&client, "run").await;

    // The paused account, then approve the waiting version.
    let paused = drifted
        .iter()
        .find(|r| r.status == Status::Drift)
        .unwrap()
        .account_id
        .clone();
    client
        .goto(&format!("{base}/console/accounts/{paused}"))
        .await
        .unwrap();
    assert!(text(&client).await.contains("Resume"));
    shot(&client, "account").await;
    client
        .goto(&format!("{base}/console/connectors/testing"))
        .await
        .unwrap();
    let page = text(&client).await;
    assert!(page.contains("awaiting approval"), "{page}");
    assert!(page.contains("https://extra.testing.example"));
    shot(&client, "connector-pending").await;
    client
        .find(Locator::XPath("//button[normalize-space()='Approve']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let approved = text_showing(&client, "approved and active").await;
    assert!(approved.contains("approved and active"), "{approved}");
    shot(&client, "connector-approved").await;
    let active = app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.2.0");
    client
        .goto(&format!("{base}/console/connectors"))
        .await
        .unwrap();
    shot(&client, "connectors").await;

    client.close().await.unwrap();
    drop(driver);
    d.shutdown().await;
}
