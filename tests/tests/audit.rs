//! The audit trail: every admin action and every read of patient data recorded with
//! who, what and when, chained by a keyed tag (HMAC under the secrets keyring, kept out of
//! the database), and `verify` finding an edited or deleted entry — and one rewritten and
//! re-hashed by a database writer without the key. A trail from before it was keyed is
//! re-tagged when the store opens. Both databases.

use passerelle_tests as common;

use common::{component, databases, env};
use passerelle::service::config::Config;
use passerelle::service::practices::NewPractice;
use passerelle::service::principal::as_actor;
use passerelle::service::records::AppointmentQuery;

#[tokio::test]
async fn admin_actions_and_patient_reads_are_chained_and_tampering_shows() {
    const SECRET: &str = "tok-Audit-never-in-the-trail";
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        let app = &e.app;
        as_actor("token:alice".into(), async {
            app.install_plugin(&component("testing")).await.unwrap();
            app.create_practice(
                NewPractice {
                    id: "p1".into(),
                    name: "Cabinet".into(),
                    timezone: "Europe/Paris".into(),
                    schedule: None,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        })
        .await;
        e.account("a1", &[("scenario", "emit"), ("count", "3")])
            .await;
        as_actor("local:bob".into(), async {
            app.set_secret("a1", "api-token", SECRET).await.unwrap();
            let shown = AppointmentQuery {
                patients: true,
                ..AppointmentQuery::default()
            };
            app.appointments_page("p1", &shown).await.unwrap();
            // Without patients shown, a read of appointments all the same (health data).
            app.appointments_page("p1", &AppointmentQuery::default())
                .await
                .unwrap();
        })
        .await;
        // Outside any request: the daemon's own.
        app.stop_canary("testing").await.unwrap_err();

        let entries = app.audit_entries(Some(100)).await.unwrap();
        let seen: Vec<(String, String, String)> = entries
            .iter()
            .rev()
            .map(|e| (e.actor.clone(), e.action.clone(), e.target.clone()))
            .collect();
        let want = [
            ("token:alice", "connector.install", "testing"),
            ("token:alice", "connector.activate", "testing"),
            ("token:alice", "practice.create", "p1"),
            ("local:bob", "secret.set", "a1"),
            ("local:bob", "read.patients", "p1"),
            ("local:bob", "read.appointments", "p1"),
        ];
        assert_eq!(
            seen,
            want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .to_vec(),
            "{}",
            db.name
        );
        let text = format!("{entries:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("Zoéline") && !text.contains("Quintardeau"));
        let report = app.verify_audit().await.unwrap();
        assert!(report.problems.is_empty(), "{report:?}");
        assert_eq!((report.entries, report.head_seq), (6, 6));

        // An edited entry.
        sqlx::query("UPDATE audit_log SET actor = 'token:mallory' WHERE seq = 4")
            .execute(app.store.pool())
            .await
            .unwrap();
        let report = app.verify_audit().await.unwrap();
        assert_eq!(
            report.problems,
            vec!["entry 4 was altered (its content does not match its tag)"],
            "{}",
            db.name
        );
        // A deleted one.
        sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(app.store.pool())
            .await
            .unwrap();
        let report = app.verify_audit().await.unwrap();
        assert_eq!(
            report.problems,
            vec![
                "entries 2 to 2 are missing (deleted)",
                "entry 3 does not follow entry 1 (the chain is broken there)",
                "entry 4 was altered (its content does not match its tag)",
            ],
            "{}",
            db.name
        );
        // Appends go on after the break, chained to the head.
        as_actor("token:alice".into(), app.delete_secret("a1", "api-token"))
            .await
            .unwrap();
        assert_eq!(app.verify_audit().await.unwrap().head_seq, 7);
    }
}

/// The unkeyed chain of SHA-256 hashes: what a database writer can compute.
fn plain(prev: &str, e: &passerelle::model::audit::AuditEntry) -> String {
    use sha2::Digest;
    let canonical = serde_json::to_string(&(
        prev, e.seq, &e.at, &e.actor, &e.action, &e.target, &e.detail,
    ))
    .unwrap();
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// Before: an unkeyed SHA-256 chain — an entry rewritten and the chain re-hashed from it
/// by a 20-line script passed `audit verify` ("chain intact"). Now the tags are keyed:
/// the rewritten entries are reported. And a trail written before the keying (plain
/// hashes) is re-tagged when a keyed store opens, and verifies.
#[tokio::test]
async fn a_rewritten_and_rehashed_entry_shows_without_the_key() {
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        let app = &e.app;
        for target in ["p1", "p2", "p3"] {
            as_actor("token:alice".into(), async {
                app.create_practice(
                    NewPractice {
                        id: target.into(),
                        name: "Cabinet".into(),
                        timezone: "Europe/Paris".into(),
                        schedule: None,
                    },
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
            })
            .await;
        }
        let pool = app.store.pool();
        let mut entries = app.audit_entries(Some(100)).await.unwrap();
        entries.reverse();
        assert!(entries[0].hash.starts_with("hmac1:"), "{entries:?}");
        assert!(app.verify_audit().await.unwrap().problems.is_empty());
        // The attack: entry 2's actor rewritten, it and every later one re-hashed.
        let mut prev = entries[0].hash.clone();
        for e in entries.iter_mut().skip(1) {
            if e.seq == 2 {
                e.actor = "token:mallory".into();
            }
            e.prev_hash = prev.clone();
            e.hash = plain(&prev, e);
            prev = e.hash.clone();
            sqlx::query(
                "UPDATE audit_log SET actor = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
            )
            .bind(e.seq)
            .bind(&e.actor)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(pool)
            .await
            .unwrap();
        }
        let report = app.verify_audit().await.unwrap();
        assert_eq!(report.problems.len(), 2, "{}: {report:?}", db.name);
        assert!(
            report.problems.iter().all(|p| p.contains("is not keyed")),
            "{}: {report:?}",
            db.name
        );
        // A trail from before the keying: every hash plain and chained.
        let mut prev = "0".repeat(64);
        for e in entries.iter_mut() {
            e.prev_hash = prev.clone();
            e.hash = plain(&prev, e);
            prev = e.hash.clone();
            sqlx::query("UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1")
                .bind(e.seq)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .execute(pool)
                .await
                .unwrap();
        }
        // Opened with its key, the store re-tags it; the trail verifies, keyed.
        assert_eq!(app.store.key_audit_trail().await.unwrap(), 3);
        let report = app.verify_audit().await.unwrap();
        assert!(report.problems.is_empty(), "{}: {report:?}", db.name);
        assert!(report.head_hash.starts_with("hmac1:"));
        assert_eq!(app.store.key_audit_trail().await.unwrap(), 0);
    }
}

/// An action and its entry commit together: when appending the entry fails, the action
/// is not done (account, secret, practice, token changes; a connector version's
/// installation, activation and canary; a "Sync now"). The fail point only fires for
/// targets named `fail-audit-…`, so other tests running beside this one are untouched.
#[tokio::test]
async fn an_action_whose_entry_cannot_be_appended_is_not_done() {
    use passerelle::service::accounts::{AccountUpdate, NewAccount};
    use passerelle::service::practices::PracticeUpdate;
    fail::cfg("audit-append", "return").unwrap();
    for db in databases().await {
        let e = env(&db, Config::default()).await;
        let app = &e.app;
        let practice = |id: &str| NewPractice {
            id: id.into(),
            name: "Cabinet".into(),
            timezone: "Europe/Paris".into(),
            schedule: None,
        };
        let now = chrono::Utc::now();
        assert!(app
            .create_practice(practice("fail-audit-p"), now)
            .await
            .is_err());
        assert!(
            app.store.practice("fail-audit-p").await.unwrap().is_none(),
            "{}",
            db.name
        );
        app.create_practice(practice("p1"), now).await.unwrap();
        let account = |id: &str| NewAccount {
            id: id.into(),
            connector: "testing".into(),
            label: None,
            settings: Default::default(),
            secrets: Default::default(),
            force: false,
        };
        assert!(app
            .create_account("p1", account("fail-audit-a"))
            .await
            .is_err());
        assert!(
            app.store.account("fail-audit-a").await.unwrap().is_none(),
            "{}",
            db.name
        );
        // Changes of an existing account or practice, refused whole.
        e.account("fail-audit-b", &[]).await;
        let before = app.store.account("fail-audit-b").await.unwrap().unwrap();
        let update = AccountUpdate {
            label: Some(Some("changed".into())),
            ..AccountUpdate::default()
        };
        assert!(app.update_account("fail-audit-b", update).await.is_err());
        assert!(app
            .set_secret("fail-audit-b", "api-token", "a-long-enough-secret")
            .await
            .is_err());
        assert!(app.delete_account("fail-audit-b", true).await.is_err());
        let after = app.store.account("fail-audit-b").await.unwrap().unwrap();
        assert_eq!(
            after, before,
            "{}: nothing of the refused actions stayed",
            db.name
        );
        assert!(after.secrets.is_empty());
        let rename = PracticeUpdate {
            name: Some("Renamed".into()),
            ..PracticeUpdate::default()
        };
        app.create_practice(practice("fail-audit-q"), now)
            .await
            .unwrap_err();
        assert!(
            app.update_practice("p1", rename, now).await.is_ok(),
            "not a fail-audit target"
        );
        assert!(app
            .create_token("fail-audit-t", &["read".into()])
            .await
            .is_err());
        assert!(app
            .tokens()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "fail-audit-t"));
        // Connector versions: an installation, an activation and a canary, refused whole.
        let versions = || async {
            app.store
                .connector_versions(Some("testing"))
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
        let installed = versions().await;
        let folder = tempfile::tempdir().unwrap();
        let named = folder.path().join("fail-audit-install.wasm");
        std::fs::copy(common::variant("testing-0.2.0-escalate.wasm"), &named).unwrap();
        assert!(app.install_plugin(&named).await.is_err());
        assert_eq!(versions().await, installed, "{}", db.name);
        app.install_plugin(&common::variant("testing-0.2.0-escalate.wasm"))
            .await
            .unwrap();
        let active = || async {
            app.store
                .active_connector("testing")
                .await
                .unwrap()
                .map(|v| v.version)
        };
        let was = active().await;
        assert!(app
            .activate("testing", "0.2.0", "fail-audit-activation")
            .await
            .is_err());
        assert_eq!(active().await, was, "{}", db.name);
        app.create_practice(practice("p-fail-audit-c"), now)
            .await
            .unwrap();
        assert!(app
            .start_canary("testing", "0.2.0", &["p-fail-audit-c".into()])
            .await
            .is_err());
        assert!(
            app.store.canaries().await.unwrap().is_empty(),
            "{}",
            db.name
        );
        // A "Sync now": its queued run and its entry, both or neither.
        e.account("p1-fail-audit-s", &[]).await;
        let request = passerelle::service::runs::SyncRequest {
            account: Some("p1-fail-audit-s".into()),
            full: false,
        };
        assert!(app.sync_now("p1", &request).await.is_err());
        assert_eq!(
            app.store.active_run("p1-fail-audit-s").await.unwrap(),
            None,
            "{}: no run was queued",
            db.name
        );
        // The trail holds no entry for any of them, and is intact.
        let entries = app.audit_entries(Some(10_000)).await.unwrap();
        assert!(
            entries
                .iter()
                .all(|e| !e.target.starts_with("fail-audit-") && !e.detail.contains("fail-audit-")),
            "{}: {entries:?}",
            db.name
        );
        assert!(app.verify_audit().await.unwrap().problems.is_empty());
    }
    fail::remove("audit-append");
}
