//! Shared test scaffolding: the built connectors, databases (SQLite always; PostgreSQL
//! unless `PASSERELLE_SKIP_POSTGRES=1`, never silently), a host opened on a temporary
//! data directory, and a small HTTP server on loopback for the HTTP defences.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use passerelle::config::Config;
use passerelle::store::runs::{Mode, Run, Trigger};
use passerelle::sync::SyncOptions;
use passerelle::Passerelle;
use tempfile::TempDir;

/// Where `cargo xtask build-plugins` put the components.
pub fn plugins_dir() -> PathBuf {
    match std::env::var_os("PASSERELLE_PLUGINS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
    }
}

/// A built connector component; panics with the command to run if it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A database to run a test against.
pub struct Db {
    pub name: &'static str,
    /// None: SQLite in the data directory.
    pub url: Option<String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The PostgreSQL URL for tests, or None when skipping was asked for explicitly.
pub fn postgres_url() -> Option<String> {
    if std::env::var("PASSERELLE_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPING the PostgreSQL half of this test (PASSERELLE_SKIP_POSTGRES=1)");
        return None;
    }
    Some(
        std::env::var("PASSERELLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    )
}

/// A fresh schema in the test PostgreSQL database, as a URL whose connections use it.
pub async fn postgres_schema_url(base: &str) -> String {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let schema = unique("t");
    let pool = sqlx::AnyPool::connect(base).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {base}: {e}. Start it, set PASSERELLE_TEST_POSTGRES_URL, \
             or run `cargo xtask test --no-postgres` outside CI"
        )
    });
    drop_stale_schemas(&pool).await;
    pool.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Drops test schemas left by earlier test processes (test binaries run one at a time).
async fn drop_stale_schemas(pool: &sqlx::AnyPool) {
    use sqlx::{Executor, Row};
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let mine = format!("t_{}_", std::process::id());
        let rows = sqlx::query(
            "SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        for row in rows {
            let name: String = row.get("nspname");
            if !name.starts_with(&mine) {
                let _ = pool
                    .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                    .await;
            }
        }
    })
    .await;
}

/// SQLite, and PostgreSQL unless explicitly skipped.
pub async fn databases() -> Vec<Db> {
    let mut dbs = vec![Db {
        name: "sqlite",
        url: None,
    }];
    if let Some(base) = postgres_url() {
        dbs.push(Db {
            name: "postgres",
            url: Some(postgres_schema_url(&base).await),
        });
    }
    dbs
}

/// A host on a temporary data directory.
pub struct Env {
    pub app: Passerelle,
    pub dir: TempDir,
}

pub async fn env(db: &Db, mut config: Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    config.database_url = db.url.clone();
    let app = Passerelle::open(dir.path(), config)
        .await
        .expect("open host");
    Env { app, dir }
}

impl Env {
    /// Installs the testing connector and adds practice `p1`.
    pub async fn with_testing(self) -> Self {
        self.app
            .install_plugin(&component("testing"))
            .await
            .expect("install testing connector");
        self.app
            .store
            .add_practice("p1", "Cabinet de test", "Europe/Paris")
            .await
            .unwrap();
        self
    }

    pub async fn account(&self, id: &str, settings: &[(&str, &str)]) {
        let settings: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.app
            .store
            .add_account(id, "p1", "testing", None, &settings)
            .await
            .unwrap();
    }

    pub async fn sync(&self, account: &str, mode: Mode) -> Run {
        let account = self.app.store.account(account).await.unwrap().unwrap();
        self.app
            .sync_account(
                &account,
                SyncOptions {
                    trigger: Trigger::Manual,
                    mode,
                },
            )
            .await
            .expect("the host itself must not fail")
    }
}

/// What the loopback test server saw.
#[derive(Default, Clone)]
pub struct Seen {
    pub requests: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    pub rate_limited_once: Arc<Mutex<bool>>,
}

impl Seen {
    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
    pub fn header_values(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, h)| {
                h.values()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn record(seen: &Seen, path: &str, headers: &HeaderMap) {
    seen.requests
        .lock()
        .unwrap()
        .push((path.to_string(), headers.clone()));
}

/// Starts the test server on 127.0.0.1; returns its base URL.
///
/// - `/echo`: answers with every request header, as a hostile platform would;
/// - `/redirect-out`: 302 to a host off the allowlist;
/// - `/slow`: answers after 10 s;
/// - `/limited`: 429 with Retry-After: 1 the first time, then 200;
/// - `/big`: a 3 MiB body.
pub async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/echo",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/echo", &headers);
                let text: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                text.join("\n")
            }),
        )
        .route(
            "/redirect-out",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/redirect-out", &headers);
                (
                    StatusCode::FOUND,
                    [("location", "http://evil.example.org/steal")],
                )
            }),
        )
        .route(
            "/slow",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/slow", &headers);
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/limited",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                record(&seen, "/limited", &headers);
                let mut once = seen.rate_limited_once.lock().unwrap();
                if !*once {
                    *once = true;
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "ok").into_response()
                }
            }),
        )
        .route("/big", get(|| async { "x".repeat(3 << 20) }))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}
