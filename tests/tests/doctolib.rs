//! End to end over real HTTP: the simulator, the host and doctolib.wasm, on SQLite and
//! PostgreSQL. What passerelle stores must be exactly the simulator's ground truth.

use passerelle_tests as common;

use std::collections::BTreeSet;

use common::{databases, sim_config, sim_env};
use passerelle::model::run::{Mode, Status};

#[tokio::test]
async fn full_sync_stores_exactly_the_simulators_data() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(3, 140)).await;
        let runs = e.sync_all(Mode::Full).await;
        assert_eq!(
            runs.len(),
            5,
            "3 practices, 2 of them with a dentist profile"
        );
        for run in &runs {
            assert_eq!(
                run.status,
                Status::Succeeded,
                "{}: {:?} {:?}",
                db.name,
                run.error_kind,
                run.error_detail
            );
            let truth = e.truth(&run.account_id);
            assert_eq!(run.counts.appointments_added, truth.len() as i64);
            assert!(
                run.counts.checkpoints >= 2,
                "140 appointments are two pages"
            );
            e.assert_matches_truth(&run.account_id, db.name).await;
        }
        // Offsets stay the platform's (Paris), never normalised to UTC.
        let stored = e.stored("p001-cabinet").await;
        assert!(stored
            .iter()
            .all(|f| f.starts_at.ends_with("+01:00") || f.starts_at.ends_with("+02:00")));
    }
}

#[tokio::test]
async fn two_accounts_of_one_practice_stay_separate() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 60)).await;
        let run = e.sync("p001-dentaire", Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded);
        assert!(
            e.stored("p001-cabinet").await.is_empty(),
            "{}: syncing the dentist profile wrote into the practice profile",
            db.name
        );
        assert!(e
            .env
            .app
            .store
            .slots("p001-cabinet")
            .await
            .unwrap()
            .is_empty());
        e.sync("p001-cabinet", Mode::Full).await;
        let ids =
            |facts: Vec<common::Fact>| facts.into_iter().map(|f| f.id).collect::<BTreeSet<_>>();
        let dentist = ids(e.stored("p001-dentaire").await);
        let cabinet = ids(e.stored("p001-cabinet").await);
        assert!(dentist.is_disjoint(&cabinet));
        e.assert_matches_truth("p001-dentaire", db.name).await;
        e.assert_matches_truth("p001-cabinet", db.name).await;
    }
}

#[tokio::test]
async fn incremental_finds_exactly_the_changes_and_full_tombstones_deletions() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(2, 120)).await;
        e.sync_all(Mode::Full).await;
        let changes = e.sim.advance();
        e.sim.clear_requests();
        for account in ["p001-cabinet", "p001-dentaire", "p002-cabinet"] {
            let (added, changed, deleted) = changes.for_account(account);
            assert!(
                added > 0 && changed > 0 && deleted > 0,
                "the step changes every account"
            );
            let before: Vec<common::Fact> = e.stored(account).await;
            let run = e.sync(account, Mode::Incremental).await;
            assert_eq!(run.status, Status::Succeeded, "{:?}", run.error_detail);
            assert_eq!(
                run.counts.appointments_added, added as i64,
                "{}/{account}: added",
                db.name
            );
            assert_eq!(
                run.counts.appointments_changed, changed as i64,
                "{}/{account}: changed",
                db.name
            );
            assert_eq!(run.counts.appointments_tombstoned, 0);
            // Stored = truth + the deleted ones, which an incremental sync cannot see.
            let stored = e.stored(account).await;
            assert_eq!(stored.len(), e.truth(account).len() + deleted);
            let deleted_ids: BTreeSet<&String> = changes
                .deleted
                .iter()
                .filter(|(a, _)| a == account)
                .map(|(_, id)| id)
                .collect();
            let without: Vec<common::Fact> = stored
                .iter()
                .filter(|f| !deleted_ids.contains(&f.id))
                .cloned()
                .collect();
            assert!(
                without == e.truth(account),
                "{}/{account}: incremental result differs",
                db.name
            );
            for f in before.iter().filter(|f| deleted_ids.contains(&f.id)) {
                assert!(
                    stored.contains(f),
                    "a deleted appointment is kept as it was until a full sync"
                );
            }

            let run = e.sync(account, Mode::Full).await;
            assert_eq!(run.status, Status::Succeeded);
            assert_eq!(
                run.counts.appointments_tombstoned, deleted as i64,
                "{}/{account}: tombstoned",
                db.name
            );
            assert_eq!(run.counts.appointments_added, 0);
            assert_eq!(run.counts.appointments_changed, 0);
            e.assert_matches_truth(account, db.name).await;
            let all = e.env.app.store.appointments(account).await.unwrap();
            for id in &deleted_ids {
                let a = all.iter().find(|a| &&a.record.external_id == id).unwrap();
                assert_eq!(a.deleted_reason.as_deref(), Some("tombstoned"));
            }
        }
        // The incremental runs asked only for changes.
        let incremental: Vec<_> = e
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.endpoint == "appointments" && r.uri.contains("updated_since="))
            .collect();
        assert_eq!(incremental.len(), 3, "one page of changes per account");
        // A second incremental run with nothing new changes nothing.
        let run = e.sync("p001-cabinet", Mode::Incremental).await;
        assert_eq!(
            (
                run.counts.appointments_added,
                run.counts.appointments_changed
            ),
            (0, 0)
        );
    }
}

#[tokio::test]
async fn concurrent_runs_of_different_accounts_all_commit() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(4, 150)).await;
        let ids: Vec<String> = e.sim.world().accounts().map(|a| a.id.clone()).collect();
        for mode in [Mode::Full, Mode::Incremental] {
            if mode == Mode::Incremental {
                e.sim.advance();
            }
            let runs = futures::future::join_all(ids.iter().map(|id| e.sync(id, mode))).await;
            for run in &runs {
                assert_eq!(
                    run.status,
                    Status::Succeeded,
                    "{}: {:?}",
                    db.name,
                    run.error_detail
                );
            }
        }
        for id in &ids {
            let truth = e.truth(id);
            let stored: Vec<common::Fact> = e.stored(id).await;
            // Deleted ones stay until a full sync; everything else is exact.
            assert!(truth.iter().all(|t| stored.contains(t)), "{}/{id}", db.name);
        }
    }
}

/// The platform keeps changing while a run reads many pages: a page-by-number reader
/// skips the item at a page boundary whenever an item already read moves to the end of
/// the order (its `updated_at` changes), and its cursor moves past the skipped one for
/// good. Read by key, nothing is lost: one more incremental run with the platform at
/// rest leaves the store equal to the platform (the deletions, which only a full run
/// sees, apart). 300 ms per response, the world moving on every 250 ms during the runs.
#[tokio::test]
async fn changes_during_a_many_page_run_are_not_lost() {
    for db in databases().await {
        let e = sim_env(&db, sim_config(1, 1500)).await;
        let account = "p001-cabinet";
        e.sim.set_faults(
            "doctolib",
            passerelle_sim::Faults {
                latency_ms: 300,
                ..passerelle_sim::Faults::default()
            },
        );
        let mut deleted: BTreeSet<String> = BTreeSet::new();
        for mode in [Mode::Full, Mode::Incremental] {
            let sim = e.sim.clone();
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let life = tokio::spawn(async move {
                let mut deleted = Vec::new();
                let mut steps = 0;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                        _ = stopped.wait_for(|s| *s) => return (steps, deleted),
                    }
                    let changes = sim.advance();
                    steps += 1;
                    deleted.extend(
                        changes
                            .deleted
                            .into_iter()
                            .filter(|(a, _)| a == account)
                            .map(|(_, id)| id),
                    );
                }
            });
            let run = e.sync(account, mode).await;
            stop.send_replace(true);
            let (steps, gone) = life.await.unwrap();
            deleted.extend(gone);
            assert_eq!(run.status, Status::Succeeded, "{:?}", run.error_detail);
            let pages = e
                .sim
                .requests()
                .into_iter()
                .filter(|r| r.endpoint == "appointments")
                .count();
            // The full run reads the window in many pages; the incremental one the
            // changes made during the full run (more than a page of them).
            let least = if mode == Mode::Full { 4 } else { 2 };
            assert!(
                steps >= 3 && pages >= least,
                "{mode:?}: the world moved {steps} times over {pages} pages"
            );
            e.sim.clear_requests();
        }
        e.sim.clear_faults();
        let run = e.sync(account, Mode::Incremental).await;
        assert_eq!(run.status, Status::Succeeded, "{:?}", run.error_detail);
        let stored: Vec<common::Fact> = e
            .stored(account)
            .await
            .into_iter()
            .filter(|f| !deleted.contains(&f.id))
            .collect();
        let truth = e.truth(account);
        let missing = truth
            .iter()
            .filter(|t| !stored.iter().any(|s| s.id == t.id))
            .count();
        let stale = truth
            .iter()
            .filter(|t| stored.iter().any(|s| s.id == t.id && s != *t))
            .count();
        assert_eq!(
            (missing, stale),
            (0, 0),
            "{}: appointments missing and stale after the platform changed during the runs",
            db.name
        );
        assert_eq!(stored, truth, "{}", db.name);
    }
}
