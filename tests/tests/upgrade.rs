//! Upgrades keep data. A database made by the last landed version (the demo's
//! practices, accounts with sealed secrets, runs, appointments, slots, the change feed
//! and the audit trail; `tests/data/upgrade/README.md` says how it was made) is loaded
//! from its dump, on SQLite and PostgreSQL, and opened by this version: its migrations
//! apply over the landed ones (sqlx refuses an edited one), every row of every table
//! that was there is still there, column for column, the audit trail verifies and every
//! secret opens under the source's key, and every account syncs the simulator's next hour
//! on it with the components the old database holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use passerelle::model::run::Status;
use passerelle::service::config::Config;
use passerelle::service::Passerelle;
use passerelle_tests::{databases, Db};
use sqlx::{Connection, Executor, Row};

/// The landed version whose databases are kept here.
const LANDED: &str = "3fd6f67";
/// The schema the PostgreSQL dump was taken from (renamed to the test's schema).
const DUMP_SCHEMA: &str = "passerelle_landed";

fn upgrade_data(db: &str) -> PathBuf {
    passerelle_tests::kit::repo()
        .join("tests/data/upgrade")
        .join(db)
}

/// A data directory with the source's secrets key and demo state.
fn data_dir_from(source: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["secrets.key", "demo.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(
            dir.path().join("secrets.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    dir
}

/// Every table's rows, each rendered as the SQL literals of its columns in order.
type Snapshot = BTreeMap<String, (Vec<String>, BTreeSet<String>)>;

async fn sqlite_snapshot(file: &Path) -> Snapshot {
    let url = format!("sqlite://{}", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut snapshot = Snapshot::new();
    for table in tables {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        snapshot.insert(table, (columns, BTreeSet::new()));
    }
    for (table, (columns, rows)) in snapshot.iter_mut() {
        let render: Vec<String> = columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
        let sql = format!("SELECT {} FROM \"{table}\"", render.join(" || '|' || "));
        for row in conn.fetch_all(sql.as_str()).await.unwrap() {
            rows.insert(row.get::<String, _>(0));
        }
    }
    conn.close().await.unwrap();
    snapshot
}

async fn postgres_snapshot(url: &str, columns_of: Option<&Snapshot>) -> Snapshot {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut snapshot = Snapshot::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        snapshot.insert(table, (columns, BTreeSet::new()));
    }
    for (table, (columns, rows)) in snapshot.iter_mut() {
        // After the upgrade: the columns the table had before, in their order.
        if let Some((old, _)) = columns_of.and_then(|s| s.get(table)) {
            *columns = old.clone();
        }
        let render: Vec<String> = columns
            .iter()
            .map(|c| format!("quote_nullable(\"{c}\")"))
            .collect();
        let sql = format!(
            "SELECT concat_ws('|', {})::text FROM \"{table}\"",
            render.join(", ")
        );
        for row in conn.fetch_all(sql.as_str()).await.unwrap() {
            rows.insert(row.get::<String, _>(0));
        }
    }
    conn.close().await.unwrap();
    snapshot
}

/// The SQLite snapshot after the upgrade, on the columns each table had before.
async fn sqlite_snapshot_on(file: &Path, before: &Snapshot) -> Snapshot {
    let url = format!("sqlite://{}", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut snapshot = Snapshot::new();
    for (table, (columns, _)) in before {
        let render: Vec<String> = columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
        let sql = format!("SELECT {} FROM \"{table}\"", render.join(" || '|' || "));
        let rows = conn
            .fetch_all(sql.as_str())
            .await
            .unwrap_or_else(|e| panic!("{table} after the upgrade: {e}"))
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        snapshot.insert(table.clone(), (columns.clone(), rows));
    }
    conn.close().await.unwrap();
    snapshot
}

/// The landed dump's SQL (kept gzipped: most of it is the installed components' bytes).
fn dump_text(source: &Path) -> String {
    use std::io::Read;
    let file = std::fs::File::open(source.join("dump.sql.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Loads the landed dump into the test's database; the URL `Config` takes.
async fn load_dump(db: &Db, dir: &Path) -> Option<String> {
    let source = upgrade_data(db.name);
    match &db.url {
        None => {
            let text = dump_text(&source);
            let url = format!("sqlite://{}?mode=rwc", dir.join("passerelle.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            conn.execute(sqlx::raw_sql(&text)).await.unwrap();
            conn.close().await.unwrap();
            None
        }
        Some(url) => {
            let schema = passerelle_tests::postgres_schema_of(url);
            let text = dump_text(&source);
            // pg_dump's plain SQL for psql: its meta-commands (`\restrict`) and the
            // schema's creation (the test's schema exists) left out; the schema renamed.
            let text: String = text
                .lines()
                .filter(|l| !l.starts_with('\\') && !l.starts_with("CREATE SCHEMA"))
                .map(|l| l.replace(DUMP_SCHEMA, &schema) + "\n")
                .collect();
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            conn.execute(sqlx::raw_sql(&text)).await.unwrap();
            conn.close().await.unwrap();
            Some(url.clone())
        }
    }
}

/// Every row there before is there after (opening may add rows, never change one).
fn assert_kept(db: &str, before: &Snapshot, after: &Snapshot) {
    let mut rows = 0;
    for (table, (_, old)) in before {
        let (_, new) = after
            .get(table)
            .unwrap_or_else(|| panic!("{db}: table {table} is gone"));
        let lost: Vec<&String> = old.difference(new).take(3).collect();
        assert!(
            lost.is_empty(),
            "{db}: {} of {} rows of {table} changed or gone, such as {lost:?}",
            old.difference(new).count(),
            old.len()
        );
        rows += old.len();
    }
    for table in [
        "practices",
        "accounts",
        "runs",
        "appointments",
        "slots",
        "audit_log",
    ] {
        let n = before.get(table).map_or(0, |(_, r)| r.len());
        assert!(
            n > 0,
            "{db}: the landed dump has no {table}: {:?}",
            before.keys()
        );
    }
    eprintln!(
        "{db}: {} tables, {rows} rows of the landed version kept",
        before.len()
    );
}

#[tokio::test]
async fn a_database_of_the_last_landed_version_upgrades_with_every_record() {
    for db in databases().await {
        let source = upgrade_data(db.name);
        let dir = data_dir_from(&source);
        let url = load_dump(&db, dir.path()).await;
        let file = dir.path().join("passerelle.db");
        let before = match &url {
            None => sqlite_snapshot(&file).await,
            Some(url) => postgres_snapshot(url, None).await,
        };
        let landed = before["_sqlx_migrations"].1.len();

        let config = Config {
            database_url: url.clone(),
            ..Config::default()
        };
        let app = Passerelle::open(dir.path(), config)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: this version cannot open {LANDED}'s database: {e:#}",
                    db.name
                )
            });
        let report = app
            .check_restored(&format!("upgrade from {LANDED}"))
            .await
            .unwrap();
        assert!(report.secrets > 0, "{}: {report:?}", db.name);
        app.store.close().await;

        let after = match &url {
            None => sqlite_snapshot_on(&file, &before).await,
            Some(url) => postgres_snapshot(url, Some(&before)).await,
        };
        assert_kept(db.name, &before, &after);
        let applied = after["_sqlx_migrations"].1.len();
        assert!(
            applied > landed,
            "{}: {landed} → {applied} migrations",
            db.name
        );

        // The simulator's next hour, synced on the upgraded database with the components
        // it holds (not today's builds): every run succeeds.
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(source.join("demo.json")).unwrap()).unwrap();
        let mut world =
            passerelle_sim::World::generate(serde_json::from_value(state["sim"].clone()).unwrap());
        for _ in 0..state["steps"].as_u64().unwrap() {
            world.advance();
        }
        let sim = passerelle_sim::Simulator::from_world(world);
        let running = sim.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
        sim.advance();
        let config = Config {
            database_url: url.clone(),
            http: passerelle::dev::demo::simulator_policy(&running.base_url),
            ..Config::default()
        };
        let app = Passerelle::open(dir.path(), config).await.unwrap();
        let accounts = app.store.list_accounts(None).await.unwrap();
        assert!(accounts.len() > 3, "{}", db.name);
        for account in &accounts {
            let run = app
                .sync_account(account, passerelle_tests::manual_incremental())
                .await
                .unwrap();
            assert_eq!(run.status, Status::Succeeded, "{}: {run:?}", db.name);
        }
        assert!(app.verify_audit().await.unwrap().problems.is_empty());
        app.store.close().await;
    }
}
