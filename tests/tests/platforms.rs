//! Keldoc, Maiia, Ordoclic and Mapharma end to end against the simulator, over real
//! sockets, on SQLite and PostgreSQL: each connector stores exactly the world's
//! bookable times — the ground truth the world decides before a platform renders it,
//! so a connector that misreads a platform's "not bookable" signal (phone only, a
//! reason kept for known patients, `canBookOnline: false`, `places_dispo: 0`) fails
//! here — and each platform's faults end as DESIGN.md prescribes, losing nothing.

use passerelle_tests as common;

use common::{databases, sim_config, sim_env, Db, SimEnv};
use passerelle::model::run::{ErrorKind, Mode, Run, Status};
use passerelle_sim::{Change, Drift, Faults, Platform, SimConfig};

/// Each platform's account in a three-practice world, the endpoint (simulator name and
/// connector name) whose times it reads and a field of them the connector needs.
struct Case {
    platform: &'static str,
    account: &'static str,
    endpoint: &'static str,
    connector_endpoint: &'static str,
    field: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        platform: "keldoc",
        account: "p001-keldoc",
        endpoint: "timetables",
        connector_endpoint: "GET /api/patients/v2/timetables/{motive}",
        field: "start_time",
    },
    Case {
        platform: "maiia",
        account: "p001-maiia",
        endpoint: "availabilities",
        connector_endpoint: "GET /api/pat-public/availabilities",
        field: "startDateTime",
    },
    Case {
        platform: "ordoclic",
        account: "p002-ordoclic",
        endpoint: "availableSlots",
        connector_endpoint: "POST /v1/solar/slots/availableSlots",
        field: "timeStart",
    },
    Case {
        platform: "mapharma",
        account: "p003-mapharma",
        endpoint: "calendar",
        connector_endpoint: "GET /api/public/calendar/{campaign}/{day}/{option}",
        field: "places_dispo",
    },
];

fn world() -> SimConfig {
    SimConfig {
        platforms: Platform::ALL.to_vec(),
        ..sim_config(3, 20)
    }
}

fn detail(run: &Run) -> String {
    format!("{:?}: {:?}", run.error_kind, run.error_detail)
}

/// A host with every account synced once.
async fn synced(db: &Db) -> SimEnv {
    let e = sim_env(db, world()).await;
    for case in &CASES {
        let run = e.sync(case.account, Mode::Full).await;
        assert_eq!(
            run.status,
            Status::Succeeded,
            "{}: {}",
            case.platform,
            detail(&run)
        );
    }
    e
}

#[tokio::test]
async fn each_platform_stores_exactly_the_worlds_bookable_times() {
    for db in databases().await {
        let e = synced(&db).await;
        for case in &CASES {
            e.assert_matches_truth(case.account, db.name).await;
            // A second run finds the same times: external ids are stable.
            let run = e.sync(case.account, Mode::Full).await;
            assert_eq!(run.status, Status::Succeeded, "{}", detail(&run));
            assert_eq!(run.counts.slots_removed, 0, "{}", case.platform);
            e.assert_matches_truth(case.account, db.name).await;
        }
        // The first practice is on three platforms, each with its own runs and slots.
        let accounts = e.env.app.store.list_accounts(Some("p001")).await.unwrap();
        let mut connectors: Vec<String> = accounts.iter().map(|a| a.connector.clone()).collect();
        connectors.dedup();
        assert_eq!(connectors, ["doctolib", "keldoc", "maiia"], "{}", db.name);
    }
}

/// A drifted field ends the run `drift` naming the endpoint and the field; the times
/// stored before stay.
#[tokio::test]
async fn drift_names_the_endpoint_and_field_and_loses_nothing() {
    for db in databases().await {
        let e = synced(&db).await;
        for case in &CASES {
            e.sim.set_faults(
                case.platform,
                Faults {
                    endpoint: Some(case.endpoint.into()),
                    drift: Some(Drift {
                        field: case.field.into(),
                        change: Change::Rename,
                        nth: None,
                    }),
                    ..Faults::default()
                },
            );
            let run = e.sync(case.account, Mode::Full).await;
            assert_eq!(
                run.status,
                Status::Drift,
                "{}: {}",
                case.platform,
                detail(&run)
            );
            let d = run.error_detail.clone().unwrap();
            assert!(
                d.contains(case.connector_endpoint) && d.contains(case.field),
                "{}: {d}",
                case.platform
            );
            e.sim.clear_faults();
            e.assert_matches_truth(case.account, db.name).await;
        }
    }
}

/// Each kind of failure the platforms answer maps to its error kind, and nothing
/// stored is lost: 5xx and truncation are `unavailable`, a long 429 `rate-limited`,
/// 401/403 `unauthorized`. (The long 429 comes last: the host then holds the
/// platform's requests for its two minutes, as it should.)
#[tokio::test]
async fn failures_map_to_their_kind_and_lose_nothing() {
    let faults = [
        (
            "unavailable",
            Faults {
                error_every: 1,
                error_status: Some(503),
                ..Faults::default()
            },
        ),
        (
            "unavailable",
            Faults {
                truncate_every: 1,
                ..Faults::default()
            },
        ),
        (
            "unauthorized",
            Faults {
                error_every: 1,
                error_status: Some(403),
                ..Faults::default()
            },
        ),
        (
            "rate-limited",
            Faults {
                rate_limit_every: 1,
                retry_after_secs: 120,
                ..Faults::default()
            },
        ),
    ];
    for db in databases().await {
        let e = synced(&db).await;
        for case in &CASES {
            for (kind, fault) in &faults {
                e.sim.set_faults(case.platform, fault.clone());
                let run = e.sync(case.account, Mode::Full).await;
                assert_eq!(
                    run.error_kind.map(ErrorKind::as_str),
                    Some(*kind),
                    "{}: {fault:?}: {}",
                    case.platform,
                    detail(&run)
                );
                assert_eq!(run.status, Status::Failed);
                e.sim.clear_faults();
                e.assert_matches_truth(case.account, db.name).await;
            }
        }
    }
}

/// Short 429s are waited out within the run, which then completes.
#[tokio::test]
async fn short_429s_are_honoured_on_every_platform() {
    for db in databases().await {
        let e = sim_env(&db, world()).await;
        for case in &CASES {
            // The run's first request is answered 429 (whatever number of requests the
            // platform's run makes): the run waits a second and goes on.
            e.sim.set_faults(
                case.platform,
                Faults {
                    rate_limit_first: 1,
                    retry_after_secs: 1,
                    ..Faults::default()
                },
            );
            let served_before = e.sim.requests().len();
            let run = e.sync(case.account, Mode::Full).await;
            assert_eq!(
                run.status,
                Status::Succeeded,
                "{}: {}",
                case.platform,
                detail(&run)
            );
            let limited = e.sim.requests()[served_before..]
                .iter()
                .filter(|r| r.platform == case.platform && r.status == 429)
                .count();
            assert_eq!(limited, 1, "{}: one 429 served", case.platform);
            e.sim.clear_faults();
            e.assert_matches_truth(case.account, db.name).await;
        }
    }
}
