//! The change feed: numbered in commit order, with the record as written; replaying it
//! from 0 rebuilds exactly what is stored (appointments with their patients and
//! tombstones, slots); a reader behind retention is told so.

use std::collections::BTreeMap;

use passerelle::model::feed::{ChangeKind, ChangeOp};
use passerelle::model::run::Mode;
use passerelle::service::feed::{ChangeQuery, ChangeView};
use passerelle::service::records::{view, AppointmentView, SlotView};
use passerelle::service::ServiceError;
use passerelle_tests::{databases, sim_env, SimEnv};

/// Every change from `after` on, read a page of `limit` at a time.
async fn read_feed(s: &SimEnv, after: i64, limit: i64) -> Vec<ChangeView> {
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let page = s
            .env
            .app
            .changes(&ChangeQuery {
                after,
                limit: Some(limit),
                patients: true,
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert!(page.next_after >= after);
        out.extend(page.changes);
        after = page.next_after;
        if !page.more {
            assert_eq!(after, page.head);
            return out;
        }
    }
}

type Key = (String, String);

/// The stored appointments (tombstoned and deleted ones included) and slots.
async fn stored(s: &SimEnv) -> (BTreeMap<Key, AppointmentView>, BTreeMap<Key, SlotView>) {
    let app = &s.env.app;
    let mut appointments = BTreeMap::new();
    let mut slots = BTreeMap::new();
    for account in app.store.list_accounts(None).await.unwrap() {
        for a in app.store.appointments(&account.id).await.unwrap() {
            let key = (a.account_id.clone(), a.record.external_id.clone());
            appointments.insert(key, view(a, true));
        }
        let page = app
            .slots_page(&passerelle::service::records::SlotQuery {
                account: Some(account.id.clone()),
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .unwrap();
        for slot in page.items {
            slots.insert((slot.account_id.clone(), slot.external_id.clone()), slot);
        }
    }
    (appointments, slots)
}

#[tokio::test]
async fn replaying_the_feed_from_zero_rebuilds_what_is_stored() {
    for db in databases().await {
        let config = passerelle_sim::SimConfig {
            seed: 11,
            practices: 3,
            appointments_per_account: 30,
            ..passerelle_sim::SimConfig::default()
        };
        let s = sim_env(&db, config).await;
        // The demo's sequence: a full sync, the platforms change, an incremental sync,
        // more changes, a full sync (tombstones what the platforms dropped).
        s.sync_all(Mode::Full).await;
        s.sim.advance();
        s.sync_all(Mode::Incremental).await;
        s.sim.advance();
        s.sim.advance();
        s.sync_all(Mode::Full).await;
        // An operator deletes an account: its records leave the feed's replay too.
        let gone = s.env.app.store.list_accounts(None).await.unwrap()[1]
            .id
            .clone();
        assert!(!s.env.app.store.slots(&gone).await.unwrap().is_empty());
        s.env.app.delete_account(&gone, true).await.unwrap();

        let feed = read_feed(&s, 0, 97).await;
        assert!(feed.len() > 100, "{}: {} changes", db.name, feed.len());
        // The deleted account's patients stay in the feed as initials, nothing more,
        // even for `patients:read`; the others keep their details.
        let patients = |account: bool| {
            feed.iter()
                .filter(|c| (c.account_id == gone) == account)
                .filter_map(|c| c.appointment.as_ref()?.patient.clone())
                .collect::<Vec<_>>()
        };
        let forgotten = patients(true);
        assert!(!forgotten.is_empty(), "{}", db.name);
        for p in &forgotten {
            assert!(p.initials.len() >= 4, "{p:?}");
            assert_eq!(
                p.first_name.as_ref().map(|n| n.chars().count()),
                Some(1),
                "{p:?}"
            );
            assert!(
                p.birth_date.is_none() && p.phone.is_none() && p.email.is_none(),
                "{p:?}"
            );
        }
        assert!(
            patients(false).iter().any(|p| p.phone.is_some()),
            "{}",
            db.name
        );
        // Numbered 1, 2, 3… in order, no gap (one writer here).
        for (i, c) in feed.iter().enumerate() {
            assert_eq!(c.seq, i as i64 + 1, "{}", db.name);
        }
        let ops: std::collections::BTreeSet<(ChangeKind, ChangeOp)> =
            feed.iter().map(|c| (c.kind, c.op)).collect();
        for needed in [
            (ChangeKind::Appointment, ChangeOp::Added),
            (ChangeKind::Appointment, ChangeOp::Changed),
            (ChangeKind::Appointment, ChangeOp::Tombstoned),
            (ChangeKind::Slot, ChangeOp::Added),
        ] {
            assert!(
                ops.contains(&needed),
                "{}: no {needed:?} in {ops:?}",
                db.name
            );
        }

        let mut appointments: BTreeMap<Key, AppointmentView> = BTreeMap::new();
        let mut slots: BTreeMap<Key, SlotView> = BTreeMap::new();
        for c in feed {
            let key = (c.account_id.clone(), c.external_id.clone());
            match (c.kind, c.op) {
                (ChangeKind::Appointment, ChangeOp::Added | ChangeOp::Changed) => {
                    let a = c.appointment.expect("added and changed carry the record");
                    appointments.insert(key, a);
                }
                (ChangeKind::Appointment, ChangeOp::Deleted | ChangeOp::Tombstoned) => {
                    let a = appointments
                        .get_mut(&key)
                        .expect("only a known appointment is deleted");
                    a.deleted_reason = Some(c.op.as_str().to_string());
                }
                (ChangeKind::Slot, ChangeOp::Added | ChangeOp::Changed) => {
                    slots.insert(key, c.slot.expect("added and changed carry the record"));
                }
                (ChangeKind::Slot, ChangeOp::Removed) => {
                    assert!(slots.remove(&key).is_some(), "only a known slot is removed");
                }
                (ChangeKind::Appointment, ChangeOp::Removed) => {
                    assert!(appointments.remove(&key).is_some(), "a known one");
                }
                other => panic!("unexpected change {other:?}"),
            }
        }
        let (want_appointments, want_slots) = stored(&s).await;
        assert!(
            want_appointments
                .values()
                .any(|a| a.deleted_reason.as_deref() == Some("tombstoned")),
            "{}: the last full sync tombstoned some",
            db.name
        );
        assert_eq!(appointments, want_appointments, "{}", db.name);
        assert_eq!(slots, want_slots, "{}", db.name);

        // Without patients=true, initials only.
        let plain = s
            .env
            .app
            .changes(&ChangeQuery {
                kind: Some(ChangeKind::Appointment),
                limit: Some(10_000),
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert!(!plain.changes.is_empty());
        for c in &plain.changes {
            if let Some(p) = c.appointment.as_ref().and_then(|a| a.patient.as_ref()) {
                assert!(!p.initials.is_empty());
                let shown = [
                    &p.external_id,
                    &p.first_name,
                    &p.last_name,
                    &p.birth_date,
                    &p.phone,
                    &p.email,
                ];
                assert!(shown.iter().all(|f| f.is_none()), "{}: {p:?}", db.name);
            }
        }
    }
}

#[tokio::test]
async fn a_reader_behind_retention_is_told_so() {
    for db in databases().await {
        let s = sim_env(&db, passerelle_tests::sim_config(1, 10)).await;
        s.sync_all(Mode::Full).await;
        let app = &s.env.app;
        let head = app.store.feed_state().await.unwrap().head;
        assert!(head > 10);
        // Retention of one day, a week from now: everything is past it.
        let week = chrono::Utc::now().timestamp_millis() + 7 * 86_400_000;
        assert_eq!(app.prune_feed(week, 1).await.unwrap(), head);
        let behind = app
            .changes(&ChangeQuery {
                after: 3,
                ..ChangeQuery::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&behind, ServiceError::Gone(m) if m.contains("retention")),
            "{}: {behind}",
            db.name
        );
        // From the head on, the reader follows again.
        let page = app
            .changes(&ChangeQuery {
                after: head,
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert!(page.changes.is_empty());
        s.sim.advance();
        s.sync_all(Mode::Incremental).await;
        let page = app
            .changes(&ChangeQuery {
                after: head,
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert!(!page.changes.is_empty(), "{}", db.name);
        assert_eq!(page.changes[0].seq, head + 1);
        let ahead = app
            .changes(&ChangeQuery {
                after: page.head + 5,
                ..ChangeQuery::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                ahead,
                ServiceError::Conflict {
                    code: "ahead-of-feed",
                    ..
                }
            ),
            "{ahead}"
        );
    }
}

/// Past the feed's retention, a deleted or tombstoned appointment keeps its tombstone
/// and its patient's initials, nothing more; live appointments keep their patients.
#[tokio::test]
async fn deleted_appointments_forget_their_patients_after_retention() {
    for db in databases().await {
        let s = sim_env(&db, passerelle_tests::sim_config(2, 30)).await;
        s.sync_all(Mode::Full).await;
        for _ in 0..3 {
            s.sim.advance();
        }
        s.sync_all(Mode::Full).await;
        let app = &s.env.app;
        let stored = || async {
            let mut all = Vec::new();
            for a in app.store.list_accounts(None).await.unwrap() {
                all.extend(app.store.appointments(&a.id).await.unwrap());
            }
            all
        };
        let before = stored().await;
        let gone = before.iter().filter(|a| a.deleted_reason.is_some()).count();
        assert!(gone > 0, "{}: the platforms dropped some", db.name);
        // Within retention: nothing changes.
        app.prune_feed(chrono::Utc::now().timestamp_millis(), 1)
            .await
            .unwrap();
        assert_eq!(stored().await, before);
        let week = chrono::Utc::now().timestamp_millis() + 7 * 86_400_000;
        app.prune_feed(week, 1).await.unwrap();
        let after = stored().await;
        assert_eq!(after.len(), before.len());
        for (a, b) in after.iter().zip(&before) {
            let (p, was) = (
                a.record.patient.as_ref().unwrap(),
                b.record.patient.as_ref().unwrap(),
            );
            if a.deleted_reason.is_some() {
                assert_eq!(p.first_name.chars().count(), 1, "{}", db.name);
                assert!(p.phone.is_none() && p.email.is_none() && p.birth_date.is_none());
                assert!(was.first_name.starts_with(&p.first_name));
            } else {
                assert_eq!(p, was, "{}: a live appointment's patient kept", db.name);
            }
        }
    }
}
