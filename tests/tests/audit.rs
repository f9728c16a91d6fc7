//! The audit trail: every admin action and every read of patient data recorded with
//! who, what and when, hash-chained, and `verify` finding an edited or deleted entry.
//! Both databases.

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
            ("token:alice", "connector.activate", "testing"),
            ("token:alice", "connector.install", "testing"),
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
            vec!["entry 4 was altered (its content does not match its hash)"],
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
                "entry 4 was altered (its content does not match its hash)",
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
