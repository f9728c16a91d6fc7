//! Per-account quotas and the disk guard (`[quotas]`): a run that would take its
//! account past a quota keeps what its earlier checkpoints committed and nothing more,
//! ends `quota`, and pauses the account (security) until the operator resumes it; the
//! other accounts go on. On SQLite and PostgreSQL; the disk guard on SQLite.

use passerelle_tests as common;

use common::{databases, env, Db};
use passerelle::model::run::{ErrorKind, Mode, PauseReason, Status};
use passerelle::model::Quotas;
use passerelle::service::config::Config;

async fn quota_env(db: &Db, quotas: Quotas) -> common::Env {
    env(
        db,
        Config {
            quotas,
            ..Config::default()
        },
    )
    .await
    .with_testing()
    .await
}

#[tokio::test]
async fn an_account_past_its_quota_keeps_what_was_committed_and_is_paused() {
    for db in databases().await {
        let quotas = Quotas {
            appointments: 10,
            ..Quotas::default()
        };
        let e = quota_env(&db, quotas).await;
        // Checkpoints of 5: the third would make 15.
        e.account(
            "hog",
            &[
                ("scenario", "emit"),
                ("count", "25"),
                ("checkpoint_every", "5"),
            ],
        )
        .await;
        // One last commit of 12: refused whole.
        e.account("greedy", &[("scenario", "emit"), ("count", "12")])
            .await;
        e.account("fine", &[("scenario", "emit"), ("count", "3")])
            .await;
        for (account, kept) in [("hog", 10), ("greedy", 0)] {
            let run = e.sync(account, Mode::Full).await;
            let what = format!("{}/{account}", db.name);
            assert_eq!(run.status, Status::Failed, "{what}: {run:?}");
            assert_eq!(run.error_kind, Some(ErrorKind::Quota), "{what}: {run:?}");
            let detail = run.error_detail.clone().unwrap_or_default();
            assert!(
                detail.contains("quotas.appointments (10)"),
                "{what}: {detail}"
            );
            let stored = e.app.store.appointments(account).await.unwrap();
            assert_eq!(stored.len(), kept, "{what}");
            let paused = e.app.paused(None).await.unwrap();
            let pause = paused
                .iter()
                .find(|p| p.account_id == account)
                .unwrap_or_else(|| panic!("{what}: not paused"));
            assert_eq!(pause.reason, PauseReason::Security, "{what}");
            assert!(pause.drift.found.contains("quota"), "{what}: {pause:?}");
        }
        // The others go on.
        let run = e.sync("fine", Mode::Full).await;
        assert_eq!(run.status, Status::Succeeded, "{}: {run:?}", db.name);
        assert_eq!(e.app.store.appointments("fine").await.unwrap().len(), 3);
    }
}

/// Below `min_free_disk_mib` free on the database's disk, a run that adds rows stores
/// nothing and pauses its account; PostgreSQL's disk is its server's, not watched here.
#[tokio::test]
async fn the_disk_guard_stops_an_account_growing_when_the_disk_is_nearly_full() {
    for db in databases().await {
        let quotas = Quotas {
            // More than any disk has free.
            min_free_disk_mib: u64::MAX / (1 << 21),
            ..Quotas::default()
        };
        let e = quota_env(&db, quotas).await;
        e.account("grower", &[("scenario", "emit"), ("count", "4")])
            .await;
        let run = e.sync("grower", Mode::Full).await;
        if db.url.is_some() {
            assert_eq!(run.status, Status::Succeeded, "{}: {run:?}", db.name);
            continue;
        }
        assert_eq!(run.status, Status::Failed, "{run:?}");
        assert_eq!(run.error_kind, Some(ErrorKind::Quota), "{run:?}");
        assert!(
            run.error_detail
                .as_deref()
                .unwrap()
                .contains("min_free_disk_mib"),
            "{run:?}"
        );
        assert!(e.app.store.appointments("grower").await.unwrap().is_empty());
        assert!(e
            .app
            .paused(None)
            .await
            .unwrap()
            .iter()
            .any(|p| p.account_id == "grower"));
    }
}
