//! Storage on SQLite and PostgreSQL: idempotent upserts, checkpoint atomicity,
//! tombstoning, account isolation, and the same through real connector runs.

use passerelle_tests as common;

use std::collections::BTreeMap;

use common::{databases, env, Env};
use passerelle::model::records::{AppointmentRecord, Finish, PatientRecord, Pending, Scope};
use passerelle::model::run::{ErrorKind, Mode, NewRun, RunEnd, RunFilter, Status, Trigger};
use passerelle::service::config::Config;
use passerelle::store::pauses::PauseEffect;

fn appointment(id: &str, starts_at_ms: i64, status: &str) -> Pending {
    Pending::Appointment(AppointmentRecord {
        external_id: id.into(),
        starts_at: "2030-03-30T09:00:00+02:00".into(),
        starts_at_ms,
        ends_at: None,
        status: status.into(),
        practitioner: Some("dr-a".into()),
        visit_motive: None,
        patient: Some(PatientRecord {
            first_name: "Anaïs".into(),
            last_name: "Berthelot".into(),
            ..PatientRecord::default()
        }),
        platform_updated_at: None,
    })
}

async fn setup(e: &Env) {
    e.app
        .store
        .add_practice("p1", "Cabinet", "Europe/Paris")
        .await
        .unwrap();
    for a in ["a1", "a2"] {
        e.app
            .store
            .add_account(a, "p1", "testing", None, &BTreeMap::new())
            .await
            .unwrap();
    }
}

/// The scope of a new run of `account` (its previous run, if still running, ended): a
/// checkpoint commits only for a run recorded as running.
async fn scope(e: &Env, account: &str) -> Scope {
    let store = &e.app.store;
    let running = store
        .list_runs(&RunFilter {
            account_id: Some(account.into()),
            status: Some(Status::Running),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    for r in running {
        store
            .finish_run(
                r.id,
                &RunEnd::without_work(Status::Cancelled, ErrorKind::Cancelled, "next".into()),
                PauseEffect::Keep,
            )
            .await
            .unwrap();
    }
    let sha = "0".repeat(64);
    let run_id = store
        .start_run(&NewRun {
            practice_id: "p1",
            account_id: account,
            connector: "testing",
            connector_version: "0.1.0",
            connector_sha256: &sha,
            trigger: Trigger::Manual,
            mode: Mode::Full,
            cursor_before: None,
        })
        .await
        .unwrap();
    Scope {
        connector: "testing".into(),
        practice_id: "p1".into(),
        account_id: account.into(),
        run_id,
        version_sha256: sha,
        stored_slots: None,
    }
}

#[tokio::test]
async fn upserts_are_idempotent_and_changes_are_counted() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        let batch = vec![
            appointment("x1", 1000, "booked"),
            appointment("x2", 2000, "booked"),
        ];
        let c = store
            .commit(&scope(&e, "a1").await, &batch, Some("c1"), None)
            .await
            .unwrap();
        assert_eq!(
            (c.appointments_added, c.appointments_changed),
            (2, 0),
            "{}",
            db.name
        );
        let c = store
            .commit(&scope(&e, "a1").await, &batch, Some("c2"), None)
            .await
            .unwrap();
        assert_eq!(
            (c.appointments_added, c.appointments_changed),
            (0, 0),
            "{}",
            db.name
        );
        let changed = vec![appointment("x1", 1000, "cancelled")];
        let c = store
            .commit(&scope(&e, "a1").await, &changed, Some("c3"), None)
            .await
            .unwrap();
        assert_eq!(
            (c.appointments_added, c.appointments_changed),
            (0, 1),
            "{}",
            db.name
        );
        let stored = store.appointments("a1").await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].record.status, "cancelled");
        assert_eq!(stored[0].record.starts_at, "2030-03-30T09:00:00+02:00");
        assert_eq!(
            stored[0].record.patient.as_ref().unwrap().first_name,
            "Anaïs"
        );
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("c3"));
    }
}

#[tokio::test]
async fn a_commit_is_all_or_nothing() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        store
            .commit(
                &scope(&e, "a1").await,
                &[appointment("kept", 1, "booked")],
                Some("ok"),
                None,
            )
            .await
            .unwrap();
        // The cursor is refused by the database after the records were written in the
        // same transaction: none of them may remain.
        let too_long = "x".repeat(5000);
        let batch = vec![
            appointment("lost1", 2, "booked"),
            appointment("lost2", 3, "booked"),
        ];
        let err = store
            .commit(&scope(&e, "a1").await, &batch, Some(&too_long), None)
            .await;
        assert!(err.is_err(), "{}", db.name);
        let ids: Vec<String> = store
            .appointments("a1")
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.record.external_id)
            .collect();
        assert_eq!(ids, vec!["kept"], "{}", db.name);
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("ok"));
    }
}

/// What a checkpoint commits is in the run's record in the same transaction (a run
/// killed afterwards tells the truth), and a run closed meanwhile (its daemon's lease
/// ended, another daemon took over) commits nothing more.
#[tokio::test]
async fn a_checkpoint_is_recorded_in_its_run_and_a_closed_run_commits_nothing() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        let run = scope(&e, "a1").await;
        for (batch, cursor) in [
            (vec![appointment("x1", 1, "booked")], "c1"),
            (
                vec![
                    appointment("x2", 2, "booked"),
                    appointment("x1", 1, "cancelled"),
                ],
                "c2",
            ),
        ] {
            store
                .commit(&run, &batch, Some(cursor), None)
                .await
                .unwrap();
        }
        let recorded = store.run(run.run_id).await.unwrap().unwrap();
        assert_eq!(recorded.status, Status::Running, "{}", db.name);
        assert_eq!(
            (
                recorded.counts.checkpoints,
                recorded.counts.appointments_added,
                recorded.counts.appointments_changed,
                recorded.cursor_after.as_deref()
            ),
            (2, 2, 1, Some("c2")),
            "{}: {recorded:?}",
            db.name
        );
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("c2"));
        // Closed by someone else: the next checkpoint is refused, nothing of it stored.
        store
            .finish_run(
                run.run_id,
                &RunEnd::without_work(Status::Cancelled, ErrorKind::Interrupted, "gone".into()),
                PauseEffect::Keep,
            )
            .await
            .unwrap();
        let refused = store
            .commit(&run, &[appointment("x3", 3, "booked")], Some("c3"), None)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("is not running any more"),
            "{refused}"
        );
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("c2"));
        assert_eq!(store.appointments("a1").await.unwrap().len(), 2);
        let closed = store.run(run.run_id).await.unwrap().unwrap();
        assert_eq!(
            (closed.status, closed.counts.checkpoints),
            (Status::Cancelled, 2),
            "the closing record stands, with what the checkpoints committed"
        );
    }
}

/// A successful run's last commit and its end are one transaction: the run is recorded
/// with the counts and cursor of every commit, the last included; a run closed meanwhile
/// writes nothing of its last commit and its closing record stands.
#[tokio::test]
async fn a_successful_runs_last_commit_and_its_end_are_one_transaction() {
    use passerelle::model::run::RunCounts;
    use passerelle::store::records::LastCommit;
    let succeeded = |counts: RunCounts| RunEnd {
        status: Status::Succeeded,
        counts,
        error_kind: None,
        error_detail: None,
        cursor_after: Some("c1".into()),
        message: None,
        duration_ms: 5,
        retry_after_secs: None,
        drift: None,
    };
    let finish = Finish {
        window_ms: (0, 1_000),
        ..Finish::default()
    };
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        let run = scope(&e, "a1").await;
        let first = store
            .commit(&run, &[appointment("x1", 1, "booked")], Some("c1"), None)
            .await
            .unwrap();
        let (recorded, lifted) = store
            .commit_and_finish_run(
                &run,
                LastCommit {
                    items: vec![appointment("x2", 2, "booked")],
                    cursor: Some("c2".into()),
                    finish: finish.clone(),
                },
                &succeeded(RunCounts {
                    appointments_added: first.appointments_added,
                    http_requests: 3,
                    checkpoints: 1,
                    ..RunCounts::default()
                }),
                PauseEffect::Lift("a1"),
            )
            .await
            .unwrap();
        assert!(!lifted, "{}: no pause to lift", db.name);
        assert_eq!(
            (
                recorded.status,
                recorded.counts.checkpoints,
                recorded.counts.appointments_added,
                recorded.counts.http_requests,
                recorded.cursor_after.as_deref()
            ),
            (Status::Succeeded, 2, 2, 3, Some("c2")),
            "{}: {recorded:?}",
            db.name
        );
        assert_eq!(store.run(run.run_id).await.unwrap().unwrap(), recorded);
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("c2"));
        // The next run is closed by another daemon before its last commit.
        let next = scope(&e, "a1").await;
        store
            .finish_run(
                next.run_id,
                &RunEnd::without_work(Status::Cancelled, ErrorKind::Interrupted, "gone".into()),
                PauseEffect::Keep,
            )
            .await
            .unwrap();
        store
            .commit_and_finish_run(
                &next,
                LastCommit {
                    items: vec![appointment("x3", 3, "booked")],
                    cursor: Some("c3".into()),
                    finish: finish.clone(),
                },
                &succeeded(RunCounts::default()),
                PauseEffect::Keep,
            )
            .await
            .unwrap_err();
        assert_eq!(store.cursor("a1").await.unwrap().as_deref(), Some("c2"));
        assert_eq!(
            store.appointments("a1").await.unwrap().len(),
            2,
            "{}",
            db.name
        );
        assert_eq!(
            store.run(next.run_id).await.unwrap().unwrap().status,
            Status::Cancelled
        );
    }
}

fn slot(id: &str, starts_at_ms: i64, place: &str) -> Pending {
    Pending::Slot(passerelle::model::records::SlotRecord {
        external_id: id.into(),
        starts_at: "2030-03-30T09:00:00+02:00".into(),
        starts_at_ms,
        ends_at: None,
        practitioner: Some("dr-a".into()),
        visit_motive: None,
        place: Some(place.into()),
    })
}

/// Slots are written as a diff: a slot stored as the platform has it is not written
/// again; a changed one is; the stored slots the run did not see (at any of its
/// commits) are removed, whatever their date (availability is a snapshot: one outside
/// the window, which no run would see again, is not kept for ever). The same whether the
/// last commit reads the stored slots or is given them as the daemon's claim read them.
#[tokio::test]
async fn slots_are_written_as_a_diff_of_the_window() {
    let last = |seen: &[&str]| Finish {
        window_ms: (0, 5_000),
        seen_slots: seen.iter().map(|s| s.to_string()).collect(),
        ..Finish::default()
    };
    for claimed in [false, true] {
        for db in databases().await {
            slots_diff(&db, claimed, last).await;
        }
    }
}

async fn slots_diff(db: &common::Db, claimed: bool, last: impl Fn(&[&str]) -> Finish) {
    {
        let e = env(db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        // A run's scope, with the account's stored slots as a claim reads them.
        let scope = |account: &'static str| {
            let e = &e;
            async move {
                let mut scope = scope(e, account).await;
                if claimed {
                    let ids = e.app.store.slots(account).await.unwrap();
                    scope.stored_slots = Some(std::sync::Arc::new(
                        ids.into_iter().map(|s| s.external_id).collect(),
                    ));
                }
                scope
            }
        };
        let first = [
            slot("s1", 100, "room 1"),
            slot("s2", 200, "room 1"),
            slot("s3", 300, "room 1"),
            slot("later", 10_000, "room 1"),
        ];
        let c = store
            .commit(
                &scope("a1").await,
                &first,
                None,
                Some(last(&["s1", "s2", "s3", "later"])),
            )
            .await
            .unwrap();
        assert_eq!((c.slots_written, c.slots_removed), (4, 0), "{}", db.name);
        // The same availability again: nothing to write, nothing to remove.
        let c = store
            .commit(
                &scope("a1").await,
                &first,
                None,
                Some(last(&["s1", "s2", "s3", "later"])),
            )
            .await
            .unwrap();
        assert_eq!((c.slots_written, c.slots_removed), (0, 0), "{}", db.name);
        // The one outside the window, not seen this time: removed all the same.
        let c = store
            .commit(
                &scope("a1").await,
                &first[..3],
                None,
                Some(last(&["s1", "s2", "s3"])),
            )
            .await
            .unwrap();
        assert_eq!((c.slots_written, c.slots_removed), (0, 1), "{}", db.name);
        // s2 moved rooms, s3 is gone; s1 was committed at an earlier checkpoint of the
        // run (seen, not in this commit): kept.
        let c = store
            .commit(
                &scope("a1").await,
                &[slot("s2", 200, "room 2"), slot("s4", 400, "room 1")],
                None,
                Some(last(&["s1", "s2", "s4"])),
            )
            .await
            .unwrap();
        assert_eq!((c.slots_written, c.slots_removed), (2, 1), "{}", db.name);
        let stored: BTreeMap<String, Option<String>> = store
            .slots("a1")
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.external_id, s.place))
            .collect();
        assert_eq!(
            stored,
            BTreeMap::from([
                ("s1".to_string(), Some("room 1".to_string())),
                ("s2".to_string(), Some("room 2".to_string())),
                ("s4".to_string(), Some("room 1".to_string())),
            ]),
            "{}",
            db.name
        );
    }
}

#[tokio::test]
async fn a_full_sync_tombstones_only_unseen_appointments_in_its_window() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        setup(&e).await;
        let store = &e.app.store;
        let first = vec![
            appointment("stay", 100, "booked"),
            appointment("gone", 200, "booked"),
            appointment("outside", 10_000, "booked"),
        ];
        store
            .commit(&scope(&e, "a1").await, &first, None, None)
            .await
            .unwrap();
        store
            .commit(
                &scope(&e, "a2").await,
                &[appointment("other-account", 150, "booked")],
                None,
                None,
            )
            .await
            .unwrap();
        let c = store
            .commit(
                &scope(&e, "a1").await,
                &[appointment("stay", 100, "booked")],
                Some("full"),
                Some(Finish {
                    window_ms: (0, 5_000),
                    tombstone: true,
                    ..Finish::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(c.appointments_tombstoned, 1, "{}", db.name);
        let by_id: BTreeMap<String, Option<String>> = store
            .appointments("a1")
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.record.external_id, a.deleted_reason))
            .collect();
        assert_eq!(by_id["stay"], None);
        assert_eq!(by_id["gone"].as_deref(), Some("tombstoned"));
        assert_eq!(by_id["outside"], None, "outside the window: kept");
        let other = store.appointments("a2").await.unwrap();
        assert_eq!(
            other[0].deleted_reason, None,
            "another account is never touched"
        );
        // Seen again later: revived, counted as a change.
        let c = store
            .commit(
                &scope(&e, "a1").await,
                &[appointment("gone", 200, "booked")],
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(c.appointments_changed, 1);
    }
}

#[tokio::test]
async fn connector_runs_store_exactly_what_was_emitted_on_both_databases() {
    for db in databases().await {
        // The testing connector's appointments are in 2030: widen the window to them.
        let mut config = Config::default();
        config.sync.window_future_days = 3650;
        let e = env(&db, config).await.with_testing().await;
        e.account(
            "main",
            &[
                ("scenario", "emit"),
                ("count", "12"),
                ("checkpoint_every", "5"),
            ],
        )
        .await;
        e.account("dentist", &[("scenario", "emit"), ("count", "4")])
            .await;
        let run = e.sync("main", Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{} {run:?}", db.name);
        assert_eq!(run.counts.appointments_added, 12);
        assert_eq!(
            run.counts.checkpoints, 3,
            "two mid-run checkpoints and the final commit"
        );
        assert_eq!(run.cursor_after.as_deref(), Some("done-12"));
        let stored = e.app.store.appointments("main").await.unwrap();
        assert_eq!(stored.len(), 12);
        let a0 = stored
            .iter()
            .find(|a| a.record.external_id == "apt-0")
            .unwrap();
        assert_eq!(a0.record.starts_at, "2030-01-01T09:00:00+01:00");
        assert_eq!(a0.practice_id, "p1");
        let p = a0.record.patient.as_ref().unwrap();
        assert_eq!(p.last_name, "Quintardeau0");
        assert_eq!(p.birth_date.as_deref(), Some("1940-03-01"));

        // Re-running changes nothing; the cursor moves on.
        let again = e.sync("main", Mode::Incremental).await;
        assert_eq!(
            (
                again.counts.appointments_added,
                again.counts.appointments_changed
            ),
            (0, 0)
        );
        assert_eq!(again.cursor_before.as_deref(), Some("done-12"));

        // A full run that no longer sees apt-3 tombstones it; deletions are recorded.
        let acc = e.app.store.account("main").await.unwrap().unwrap();
        let mut settings = acc.settings.clone();
        settings.insert("omit".into(), "apt-3".into());
        settings.insert("delete".into(), "apt-5".into());
        e.app
            .store
            .update_account_settings("main", &settings)
            .await
            .unwrap();
        let full = e.sync("main", Mode::Full).await;
        assert_eq!(full.counts.appointments_tombstoned, 1, "{full:?}");
        assert_eq!(full.counts.appointments_deleted, 1, "{full:?}");

        // The other account of the practice is untouched by all of this.
        let run = e.sync("dentist", Mode::Full).await;
        assert_eq!(run.counts.appointments_added, 4);
        let dentist = e.app.store.appointments("dentist").await.unwrap();
        assert!(dentist
            .iter()
            .all(|a| a.deleted_reason.is_none() && a.account_id == "dentist"));
        assert_eq!(e.app.store.appointments("main").await.unwrap().len(), 12);
    }
}

#[tokio::test]
async fn a_practice_schedule_is_validated_and_kept() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        e.app
            .store
            .add_practice("p9", "Cabinet", "Europe/Paris")
            .await
            .unwrap();
        let p = e.app.store.practice("p9").await.unwrap().unwrap();
        assert_eq!(p.schedule, None);
        assert_eq!(
            passerelle::service::schedule::practice_schedule(
                &p,
                passerelle::service::schedule::DEFAULT_CRON,
                std::time::Duration::ZERO
            )
            .unwrap()
            .expression(),
            "0 3 * * *"
        );
        e.app
            .store
            .set_practice_schedule("p9", Some("30 2 * * 1-5"))
            .await
            .unwrap();
        let err = e
            .app
            .update_practice(
                "p9",
                passerelle::service::practices::PracticeUpdate {
                    schedule: Some(Some("99 * * * *".into())),
                    ..Default::default()
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid cron expression"),
            "{err:#}"
        );
        let p = e.app.store.practice("p9").await.unwrap().unwrap();
        assert_eq!(
            p.schedule.as_deref(),
            Some("30 2 * * 1-5"),
            "{}: kept",
            db.name
        );
        e.app.store.set_practice_schedule("p9", None).await.unwrap();
        assert_eq!(
            e.app.store.list_practices().await.unwrap()[0].schedule,
            None
        );
        assert!(e
            .app
            .store
            .set_practice_schedule("nope", None)
            .await
            .is_err());
    }
}

/// Secrets at rest are sealed: the database holds no platform token (a backup leaks
/// none), a sealed value moved to another account does not open, plain values from
/// before sealing are sealed when a store opens, and a key rotation seals everything
/// under a new key that a restarted host reads. Both databases.
#[tokio::test]
async fn secrets_are_sealed_at_rest_and_the_key_rotates() {
    const TOKEN: &str = "tok-AtRest-5e6f7a8b9c";
    for db in databases().await {
        let e = env(&db, Config::default()).await.with_testing().await;
        e.account("a1", &[("scenario", "nop")]).await;
        e.account("a2", &[("scenario", "nop")]).await;
        e.app
            .store
            .set_secret("a1", "api-token", TOKEN)
            .await
            .unwrap();
        let raw = |account: &'static str| {
            let store = e.app.store.clone();
            async move {
                sqlx::query_scalar::<_, String>(
                    "SELECT value FROM account_secrets WHERE account_id = $1 AND name = 'api-token'",
                )
                .bind(account)
                .fetch_one(store.pool())
                .await
                .unwrap()
            }
        };
        let sealed = raw("a1").await;
        assert!(sealed.starts_with("sealed1:"), "{}: {sealed}", db.name);
        assert!(!sealed.contains(TOKEN));
        assert_eq!(
            e.app.store.secret_values("a1").await.unwrap()["api-token"],
            TOKEN
        );

        // Moved to another account: refused, without the value.
        e.app
            .store
            .set_secret("a2", "api-token", "other-value-123")
            .await
            .unwrap();
        sqlx::query("UPDATE account_secrets SET value = $1 WHERE account_id = 'a2'")
            .bind(&sealed)
            .execute(e.app.store.pool())
            .await
            .unwrap();
        let refused = |account: &'static str| {
            let store = e.app.store.clone();
            async move { store.secret_values(account).await.unwrap_err().to_string() }
        };
        let err = refused("a2").await;
        assert!(err.contains("altered or moved"), "{err}");
        assert!(!err.contains(TOKEN));

        // A plain value planted in a sealed database is refused, and stays refused
        // (not sealed) when the store opens again.
        sqlx::query(
            "UPDATE account_secrets SET value = 'plain-legacy-token' WHERE account_id = 'a2'",
        )
        .execute(e.app.store.pool())
        .await
        .unwrap();
        let err = refused("a2").await;
        assert!(err.contains("plain text"), "{err}");
        assert!(!err.contains("plain-legacy-token"), "{err}");
        let config = e.app.config.clone();
        let a2_raw = |store: passerelle::store::Store| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT value FROM account_secrets WHERE account_id = 'a2'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap()
        };
        let reopened = passerelle::Passerelle::open(e.dir.path(), config.clone())
            .await
            .unwrap();
        assert_eq!(a2_raw(reopened.store.clone()).await, "plain-legacy-token");
        assert!(reopened.store.secret_values("a2").await.is_err());
        drop(reopened);
        // A database from before sealing (no record of it): its plain values are
        // sealed once, when the store opens.
        sqlx::query("DELETE FROM store_meta")
            .execute(e.app.store.pool())
            .await
            .unwrap();
        let reopened = passerelle::Passerelle::open(e.dir.path(), config.clone())
            .await
            .unwrap();
        let a2 = a2_raw(reopened.store.clone()).await;
        assert!(
            a2.starts_with("sealed1:") && !a2.contains("plain-legacy"),
            "{a2}"
        );

        // Rotation: every secret sealed under a new key, read back after a restart.
        let before = reopened.keyring.key_id().to_string();
        let rotated = reopened.rotate_secrets_key().await.unwrap();
        assert_eq!(rotated.sealed, 2, "{}", db.name);
        assert_ne!(rotated.key_id, before);
        assert!(e.dir.path().join("secrets.key.previous").exists());
        drop(reopened);
        let after = passerelle::Passerelle::open(e.dir.path(), config)
            .await
            .unwrap();
        assert_eq!(after.keyring.key_id(), rotated.key_id);
        assert_eq!(
            after.store.secret_values("a1").await.unwrap()["api-token"],
            TOKEN
        );
        assert_eq!(
            after.store.secret_values("a2").await.unwrap()["api-token"],
            "plain-legacy-token"
        );
        let now = raw("a1").await;
        assert!(
            now.contains(&format!("sealed1:{}:", rotated.key_id)),
            "{now}"
        );
    }
}

/// The embedded migrations are every file of both folders, in order, with the version,
/// description and checksum sqlx's own reading of the folder gives (so a database
/// migrated by an earlier build, which used sqlx's `migrate!`, opens unchanged).
#[tokio::test]
async fn the_embedded_migrations_are_the_folders() {
    use passerelle::store::migrations::{Embedded, FILES};
    use passerelle::store::Backend;
    use sqlx::migrate::MigrationSource;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/store/migrations");
    for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
        let dir = root.join(dir);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<String> = FILES.iter().map(|f| format!("{f}.sql")).collect();
        assert_eq!(
            listed,
            on_disk,
            "{}: list every migration in store/src/migrations.rs",
            dir.display()
        );
        let read = dir.as_path().resolve().await.unwrap();
        let embedded = Embedded::new(backend).migrations();
        assert_eq!(read.len(), embedded.len());
        for (r, e) in read.iter().zip(&embedded) {
            assert_eq!(
                (r.version, &r.description, &r.checksum, r.no_tx),
                (e.version, &e.description, &e.checksum, e.no_tx)
            );
        }
    }
}

/// Migrations once landed are never edited — sqlx refuses to open a database that
/// applied another form of one (as happened when 0004 grew a table in place): each is
/// pinned by its SHA-256 in `host/store/migrations/landed.sha256`, and every migration
/// file is listed there (a new one is added with its line).
#[test]
fn landed_migrations_are_never_edited() {
    use sha2::{Digest, Sha256};
    let dir = passerelle_tests::kit::repo().join("host/store/migrations");
    let pins = std::fs::read_to_string(dir.join("landed.sha256")).unwrap();
    let mut pinned = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for line in pins
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (sum, file) = line.split_once(' ').expect("SUM PATH");
        pinned.insert(file.to_string());
        match std::fs::read(dir.join(file)) {
            Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == sum => {}
            Ok(_) => problems.push(format!(
                "{file} was edited after it landed: write a new migration instead"
            )),
            Err(e) => problems.push(format!("{file}: {e} (a landed migration is never removed)")),
        }
    }
    for db in ["sqlite", "postgres"] {
        for entry in std::fs::read_dir(dir.join(db)).unwrap() {
            let name = format!("{db}/{}", entry.unwrap().file_name().to_string_lossy());
            if !pinned.contains(&name) {
                problems.push(format!(
                    "{name} is not in landed.sha256: add `sha256sum` of it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
