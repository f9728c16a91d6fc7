//! Webhook delivery of the change feed: a receiver that is down, answers 500s, times
//! out, then recovers — with a daemon restart in between — gets every change, in order
//! per practice, each delivery signed (Standard Webhooks), duplicates only as
//! at-least-once allows and under the same `webhook-id`; a receiver gone for good ends
//! in dead-letter, and `replay` delivers again. A receiver that never answers holds up
//! no other subscription.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use passerelle::model::feed::SubscriptionState;
use passerelle::model::run::Mode;
use passerelle::service::subscriptions::{AddSubscription, SubscriptionView};
use passerelle::service::ServiceError;
use passerelle_tests::daemon::{daemon_config, daemon_env, quiet_options, start_daemon, DaemonEnv};
use passerelle_tests::{databases, sim_config, SimEnv};
use serde_json::Value;

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const SLOW: u8 = 2;
/// Keeps the POST open until the test releases it ([`Receiver::release`]).
const HANG: u8 = 3;

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Got {
    webhook_id: String,
    verified: bool,
    body: Value,
}

/// A webhook receiver on a port chosen (and held) now, listening only once started.
struct Receiver {
    socket: Mutex<Option<tokio::net::TcpSocket>>,
    port: u16,
    mode: Arc<AtomicU8>,
    got: Arc<Mutex<Vec<Got>>>,
    secret: Arc<Mutex<String>>,
    released: tokio::sync::watch::Sender<bool>,
}

impl Receiver {
    /// The port is bound now and kept (nothing else can take it, not even another
    /// receiver whose URL a daemon already has), but not listening: connections are
    /// refused until [`Receiver::start`].
    fn new() -> Receiver {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Receiver {
            socket: Mutex::new(Some(socket)),
            port,
            mode: Arc::new(AtomicU8::new(OK)),
            got: Arc::default(),
            secret: Arc::default(),
            released: tokio::sync::watch::Sender::new(false),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    async fn start(&self) {
        let (mode, got, secret) = (self.mode.clone(), self.got.clone(), self.secret.clone());
        let released = self.released.subscribe();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (mode, got, secret) = (mode.clone(), got.clone(), secret.clone());
                let released = released.clone();
                async move {
                    let verified = standardwebhooks::Webhook::new(&secret.lock().unwrap())
                        .unwrap()
                        .verify(&body, &headers)
                        .is_ok();
                    let m = mode.load(Ordering::SeqCst);
                    if m == FAIL_500 {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    // Received (and kept) even when the answer comes too late.
                    got.lock().unwrap().push(Got {
                        webhook_id: headers["webhook-id"].to_str().unwrap().to_string(),
                        verified,
                        body: serde_json::from_slice(&body).unwrap(),
                    });
                    if m == SLOW {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    if m == HANG {
                        let _ = released.clone().wait_for(|r| *r).await;
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let socket = self.socket.lock().unwrap().take().expect("started once");
        let listener = socket.listen(64).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Answers the POSTs held open by [`HANG`], and the next ones at once.
    fn release(&self) {
        self.set(OK);
        self.released.send_replace(true);
    }
}

async fn wait_for_subscription(
    s: &SimEnv,
    id: &str,
    what: &str,
    done: impl Fn(&SubscriptionView) -> bool,
) -> SubscriptionView {
    let started = Instant::now();
    loop {
        let sub = s.env.app.subscription(id).await.unwrap();
        if done(&sub) {
            return sub;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "waited too long for {what}: {sub:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Checks what `receiver` got against the whole feed: every change, first arrivals in
/// order per practice, every delivery verified, a change delivered twice only under one
/// `webhook-id`. Returns how many deliveries were duplicates.
async fn check_received(s: &SimEnv, receiver: &Receiver, db: &str) -> usize {
    let head = s.env.app.store.feed_state().await.unwrap().head;
    let got = receiver.got.lock().unwrap().clone();
    let mut ids_of: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut last_per_practice: BTreeMap<String, i64> = BTreeMap::new();
    let mut duplicates = 0;
    for g in &got {
        assert!(
            g.verified,
            "{db}: the signature of delivery {} (of {} for this receiver) did not verify",
            g.webhook_id,
            got.len()
        );
        assert_eq!(g.body["type"], "passerelle.changes");
        for c in g.body["data"]["changes"].as_array().unwrap() {
            let seq = c["seq"].as_i64().unwrap();
            let ids = ids_of.entry(seq).or_default();
            if !ids.is_empty() {
                duplicates += 1;
                ids.insert(g.webhook_id.clone());
                continue;
            }
            ids.insert(g.webhook_id.clone());
            let practice = c["practice_id"].as_str().unwrap().to_string();
            let last = last_per_practice.entry(practice).or_insert(0);
            assert!(seq > *last, "{db}: change {seq} arrived after {last}");
            *last = seq;
        }
    }
    let all: Vec<i64> = (1..=head).collect();
    assert_eq!(
        ids_of.keys().copied().collect::<Vec<_>>(),
        all,
        "{db}: every change arrived"
    );
    for (seq, ids) in &ids_of {
        assert_eq!(
            ids.len(),
            1,
            "{db}: change {seq} came under several ids {ids:?}"
        );
    }
    duplicates
}

#[tokio::test]
async fn every_change_reaches_a_receiver_that_fails_for_a_while_and_a_dead_one_is_replayed() {
    for db in databases().await {
        let mut config = daemon_config();
        config.delivery.backoff_base_ms = 100;
        config.delivery.backoff_max_secs = 1;
        config.delivery.timeout_secs = 1;
        config.delivery.poll_ms = 50;
        config.delivery.max_attempts = 10;
        config.delivery.batch_size = 40;
        let d = daemon_env(&db, sim_config(2, 25), config, quiet_options()).await;
        let app = &d.sim.env.app;

        let flaky = Receiver::new();
        let gone = Receiver::new();
        // A loopback URL needs the operator's leave.
        let refused = app
            .add_subscription(&AddSubscription {
                url: flaky.url(),
                ..AddSubscription::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, ServiceError::Conflict { code: "private-destination", message } if message.contains("private")),
            "{refused}"
        );
        let add = |url: String| AddSubscription {
            url,
            allow_private: true,
            after: Some(0),
            ..AddSubscription::default()
        };
        let a = app.add_subscription(&add(flaky.url())).await.unwrap();
        *flaky.secret.lock().unwrap() = a.secret.clone();
        // The second carries patients (in clear, on loopback: with the operator's leave).
        let b = app
            .add_subscription(&AddSubscription {
                patients: true,
                allow_cleartext: true,
                ..add(gone.url())
            })
            .await
            .unwrap();
        *gone.secret.lock().unwrap() = b.secret.clone();
        assert!(a.secret.starts_with("whsec_"));
        let a = a.subscription.id;
        let b = b.subscription.id;

        d.sim.sync_all(Mode::Full).await;
        // Down: nothing listens.
        wait_for_subscription(&d.sim, &a, "failures while down", |s| {
            s.attempts >= 2 && s.last_error.as_deref() == Some("cannot connect")
        })
        .await;
        // Up, but answering 500.
        flaky.set(FAIL_500);
        flaky.start().await;
        wait_for_subscription(&d.sim, &a, "a 500", |s| {
            s.last_error.as_deref() == Some("the receiver answered HTTP 500")
        })
        .await;
        // Too slow: the receiver has the batch, the daemon does not know.
        flaky.set(SLOW);
        wait_for_subscription(&d.sim, &a, "a timeout", |s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("no answer"))
        })
        .await;
        assert!(!flaky.got.lock().unwrap().is_empty());

        // A restart; more changes while no daemon runs; the receiver recovers.
        let DaemonEnv { running, sim, .. } = d;
        running.shutdown().await.unwrap();
        sim.sim.advance();
        sim.sync_all(Mode::Incremental).await;
        flaky.set(OK);
        let running = start_daemon(
            sim.env.dir.path(),
            sim.env.app.config.clone(),
            quiet_options(),
        )
        .await;
        let d = DaemonEnv::attach(running, sim);
        let app = &d.sim.env.app;
        let head = app.store.feed_state().await.unwrap().head;
        let done = wait_for_subscription(&d.sim, &a, "everything delivered", |s| {
            s.delivered_through == head && s.attempts == 0
        })
        .await;
        assert_eq!(done.state, SubscriptionState::Active);
        let duplicates = check_received(&d.sim, &flaky, db.name).await;
        assert!(
            duplicates > 0,
            "{}: the timed-out batch came twice",
            db.name
        );

        // The receiver that never came: dead after its attempts; replay delivers it all.
        let dead = wait_for_subscription(&d.sim, &b, "dead-letter", |s| {
            s.state == SubscriptionState::Dead
        })
        .await;
        assert_eq!(dead.attempts, 10);
        assert_eq!(dead.delivered_through, 0);
        gone.start().await;
        app.replay_subscription(&b, 0).await.unwrap();
        wait_for_subscription(&d.sim, &b, "replayed", |s| {
            s.delivered_through == head && s.state == SubscriptionState::Active
        })
        .await;
        check_received(&d.sim, &gone, db.name).await;
        // Each batch that carried patients is on the audit trail, and only those.
        let trail = app.audit_entries(Some(10_000)).await.unwrap();
        let carried: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "webhook.patients-delivered")
            .collect();
        assert!(!carried.is_empty(), "{}", db.name);
        let mut changes = 0;
        for e in &carried {
            assert_eq!(e.target, b, "{e:?}");
            let detail: Value = serde_json::from_str(&e.detail).unwrap();
            assert!(detail["webhook_id"].as_str().unwrap().starts_with(&b));
            changes += detail["changes"].as_i64().unwrap();
        }
        assert!(changes >= head, "{}: {changes} of {head}", db.name);
        d.shutdown().await;
    }
}

/// Before: one daemon delivered to one subscription at a time, so a receiver that kept
/// its POST open held every other subscription for `delivery.timeout_secs`.
#[tokio::test]
async fn a_receiver_that_never_answers_holds_up_no_other_subscription() {
    for db in databases().await {
        let mut config = daemon_config();
        // Long enough that waiting on the stuck receiver would show: the test waits 90 s.
        config.delivery.timeout_secs = 600;
        config.delivery.poll_ms = 50;
        config.delivery.batch_size = 40;
        let d = daemon_env(&db, sim_config(2, 25), config, quiet_options()).await;
        let app = &d.sim.env.app;
        let stuck = Receiver::new();
        let fine = Receiver::new();
        stuck.set(HANG);
        stuck.start().await;
        fine.start().await;
        let mut ids = Vec::new();
        for receiver in [&stuck, &fine] {
            let added = app
                .add_subscription(&AddSubscription {
                    url: receiver.url(),
                    allow_private: true,
                    after: Some(0),
                    ..AddSubscription::default()
                })
                .await
                .unwrap();
            *receiver.secret.lock().unwrap() = added.secret;
            ids.push(added.subscription.id);
        }
        let (stuck_id, fine_id) = (ids[0].clone(), ids[1].clone());

        d.sim.sync_all(Mode::Full).await;
        // The stuck receiver holds its first batch open.
        wait_for_subscription(&d.sim, &stuck_id, "the stuck receiver's first POST", |_| {
            !stuck.got.lock().unwrap().is_empty()
        })
        .await;
        // More changes while it does: the other subscription still gets all of them.
        let before = app.store.feed_state().await.unwrap().head;
        d.sim.sim.advance();
        d.sim.sync_all(Mode::Incremental).await;
        let head = app.store.feed_state().await.unwrap().head;
        assert!(
            head > before,
            "{}: the second sync changed nothing",
            db.name
        );
        wait_for_subscription(&d.sim, &fine_id, "the other subscription's changes", |s| {
            s.delivered_through == head
        })
        .await;
        check_received(&d.sim, &fine, db.name).await;
        let held = app.subscription(&stuck_id).await.unwrap();
        assert_eq!(held.delivered_through, 0, "{}: {held:?}", db.name);
        assert_eq!(stuck.got.lock().unwrap().len(), 1, "{}", db.name);

        stuck.release();
        wait_for_subscription(&d.sim, &stuck_id, "the stuck one, released", |s| {
            s.delivered_through == head
        })
        .await;
        check_received(&d.sim, &stuck, db.name).await;
        d.shutdown().await;
    }
}

/// Patients' full records go over `http://` only with the operator's explicit leave,
/// which the audit trail keeps (with `allow_private`); refused, nothing is stored.
#[tokio::test]
async fn patients_over_cleartext_need_the_operators_leave() {
    for db in databases().await {
        let s = passerelle_tests::sim_env(&db, sim_config(1, 1)).await;
        let app = &s.env.app;
        let clear = |allow_cleartext: bool| AddSubscription {
            url: "http://receiver.example/hook".into(),
            patients: true,
            allow_cleartext,
            ..AddSubscription::default()
        };
        let refused = app.add_subscription(&clear(false)).await.unwrap_err();
        assert!(
            matches!(&refused, ServiceError::Conflict { code: "cleartext-destination", message } if message.contains("--allow-cleartext")),
            "{}: {refused}",
            db.name
        );
        assert!(app.subscriptions().await.unwrap().is_empty());
        // Initials only, or https: no leave needed.
        for add in [
            AddSubscription {
                patients: false,
                ..clear(false)
            },
            AddSubscription {
                url: "https://receiver.example/hook".into(),
                ..clear(false)
            },
        ] {
            app.add_subscription(&add).await.unwrap();
        }
        let allowed = app.add_subscription(&clear(true)).await.unwrap();
        let trail = app.audit_entries(Some(10)).await.unwrap();
        let entry = trail
            .iter()
            .find(|e| e.target == allowed.subscription.id)
            .expect("the subscription's audit entry");
        assert_eq!(entry.action, "subscription.add");
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["allow_cleartext"], true, "{entry:?}");
        assert_eq!(detail["allow_private"], false, "{entry:?}");
        assert_eq!(app.subscriptions().await.unwrap().len(), 3);
    }
}
