//! The sandbox's defences, each proven with the hostile `testing` connector: a run that
//! misbehaves fails with a clear reason, and the host goes on serving other runs.

use passerelle_tests as common;

use std::time::{Duration, Instant};

use common::{component, databases, env, server, Db};
use passerelle::model::limits::Limits;
use passerelle::model::run::{Mode, Run, Status};
use passerelle::runtime::capabilities::http::HttpPolicy;
use passerelle::service::config::Config;

fn sqlite() -> Db {
    Db {
        name: "sqlite",
        url: None,
    }
}

fn config(limits: Limits, http: HttpPolicy) -> Config {
    Config {
        limits,
        http,
        ..Config::default()
    }
}

/// A host on SQLite with the testing connector and practice `p1`.
async fn testing_env(limits: Limits, http: HttpPolicy) -> common::Env {
    env(&sqlite(), config(limits, http))
        .await
        .with_testing()
        .await
}

fn allow_private() -> HttpPolicy {
    HttpPolicy {
        allow_private_addresses: true,
        ..HttpPolicy::default()
    }
}

#[tokio::test]
async fn an_infinite_loop_ends_at_the_deadline_and_the_host_goes_on() {
    let limits = Limits {
        deadline_secs: 0.5,
        ..Limits::default()
    };
    let e = testing_env(limits, HttpPolicy::default()).await;
    e.account("looper", &[("scenario", "loop")]).await;
    e.account("fine", &[("scenario", "emit"), ("count", "3")])
        .await;
    let started = Instant::now();
    let run = e.sync("looper", Mode::Incremental).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("limit-exceeded")
    );
    assert!(
        run.error_detail.as_deref().unwrap().contains("deadline"),
        "{run:?}"
    );
    let after = e.sync("fine", Mode::Incremental).await;
    assert_eq!(after.status, Status::Succeeded, "{after:?}");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory_mib: 32,
        ..Limits::default()
    };
    let e = testing_env(limits, HttpPolicy::default()).await;
    e.account("bomb", &[("scenario", "membomb")]).await;
    let run = e.sync("bomb", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("limit-exceeded"),
        "{run:?}"
    );
    assert!(
        run.error_detail.as_deref().unwrap().contains("memory"),
        "{run:?}"
    );
}

/// Runs share the daemon's memory budget as they hold it (`daemon.memory_ceiling_mib`):
/// a run whose growth does not fit beside the others ends as a host failure (transient:
/// retried later), not as its own limit, and every run gives back what it held.
#[tokio::test]
async fn runs_share_the_memory_budget_and_give_back_what_they_held() {
    use passerelle::service::config::BASE_MEMORY_MIB;
    let limits = Limits {
        memory_mib: 32,
        pending_records_mib: 1,
        response_mib: 1,
        log_kib: 64,
        scrub_patterns: 1_000,
        wasi_resources: 100,
        wasi_fields_kib: 1,
        deadline_secs: 4.0,
        ..Limits::default()
    };
    let mut config = config(limits, HttpPolicy::default());
    let one_run = config.limits.run_worst_case_mib();
    assert!(one_run < 40, "{one_run}");
    // The smallest ceiling allowed: room for one run at its limits, no more.
    config.daemon.memory_ceiling_mib = Some(BASE_MEMORY_MIB + one_run);
    let e = env(&sqlite(), config).await.with_testing().await;
    let budget = e.app.runtime.memory_budget().clone();
    assert_eq!(budget.limit(), Some((one_run as usize) << 20));
    const SLEEPERS: usize = 8;
    for i in 0..SLEEPERS {
        e.account(&format!("sleeper{i}"), &[("scenario", "sleep")])
            .await;
    }
    e.account("bomb", &[("scenario", "membomb")]).await;
    e.account("fine", &[("scenario", "emit"), ("count", "50")])
        .await;
    let env = &e;
    let sleepers = futures::future::join_all(
        (0..SLEEPERS)
            .map(|i| async move { env.sync(&format!("sleeper{i}"), Mode::Incremental).await }),
    );
    let bomb = async {
        // Once the sleepers hold their memories, less than the bomb's 32 MiB is left.
        let deadline = Instant::now() + Duration::from_secs(3);
        while budget.used() < SLEEPERS << 20 {
            assert!(
                Instant::now() < deadline,
                "the sleepers hold {}",
                budget.used()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let held = budget.used();
        assert!(held + (32 << 20) > budget.limit().unwrap(), "{held}");
        e.sync("bomb", Mode::Incremental).await
    };
    let (sleepers, bomb) = tokio::join!(sleepers, bomb);
    assert_eq!(bomb.status, Status::Failed);
    assert_eq!(
        bomb.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("host"),
        "{bomb:?}"
    );
    assert!(bomb.error_kind.unwrap().is_transient());
    assert!(
        bomb.error_detail
            .as_deref()
            .unwrap()
            .contains("memory budget"),
        "{bomb:?}"
    );
    for run in sleepers {
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("limit-exceeded"),
            "{run:?}"
        );
    }
    assert_eq!(budget.used(), 0, "every run gave its memory back");
    // Alone, a run that holds records between checkpoints fits, and gives them back.
    let fine = e.sync("fine", Mode::Incremental).await;
    assert_eq!(fine.status, Status::Succeeded, "{fine:?}");
    assert_eq!(budget.used(), 0);
}

#[tokio::test]
async fn a_host_off_the_allowlist_is_denied() {
    let e = testing_env(Limits::default(), allow_private()).await;
    e.account(
        "away",
        &[("scenario", "fetch"), ("url", "http://example.org/x")],
    )
    .await;
    let run = e.sync("away", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(run.counts.http_requests, 0);
    let detail = run.error_detail.unwrap();
    assert!(
        detail.contains("http://example.org is not on the connector's allowlist"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_redirect_off_the_allowlist_is_denied() {
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/redirect-out");
    e.account("redir", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let run = e.sync("redir", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    let detail = run.error_detail.unwrap();
    assert!(
        detail.contains("redirect to http://evil.example.org is not on the connector's allowlist"),
        "{detail}"
    );
    assert_eq!(seen.paths(), vec!["/redirect-out"]);
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let (base, seen) = server().await;
    let url = format!("{base}/echo");
    let closed = env(&sqlite(), Config::default()).await.with_testing().await;
    closed
        .account("lo", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let run = closed.sync("lo", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.error_detail
            .as_deref()
            .unwrap()
            .contains("private or loopback"),
        "{run:?}"
    );
    assert!(seen.paths().is_empty(), "nothing may reach the server");

    let open = testing_env(Limits::default(), allow_private()).await;
    open.account("lo", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let run = open.sync("lo", Mode::Incremental).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    assert_eq!(seen.paths(), vec!["/echo"]);
}

/// Every spelling of a loopback or unspecified address is refused like `127.0.0.1`:
/// decimal and hexadecimal forms, IPv4-mapped IPv6, `[::]`, `0.0.0.0`, NAT64 and 6to4
/// forms of loopback; nothing reaches the test server.
#[tokio::test]
async fn ip_literal_spellings_of_private_addresses_are_refused() {
    let (base, seen) = server().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let e = env(&sqlite(), Config::default()).await.with_testing().await;
    for (i, host) in [
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::]",
        "0.0.0.0",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
        "[::127.0.0.1]",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("ip{i}");
        let url = format!("http://{host}:{port}/echo");
        e.account(&id, &[("scenario", "fetch"), ("url", &url)])
            .await;
        let run = e.sync(&id, Mode::Incremental).await;
        assert_eq!(run.status, Status::Failed, "{host}: {run:?}");
        let detail = run.error_detail.unwrap_or_default();
        assert!(detail.contains("denied"), "{host}: {detail}");
    }
    assert!(seen.paths().is_empty(), "{:?}", seen.paths());
}

/// An operator override routes an allowed origin to another base URL, and a
/// fully-qualified name (`api.testing.example.`) is the same origin as the plain one
/// (before, the trailing dot skipped the override and went to the network).
#[tokio::test]
async fn an_operator_override_routes_an_allowed_origin_to_another_base_url() {
    let (base, seen) = server().await;
    let mut http = HttpPolicy::default();
    http.overrides
        .insert("https://api.testing.example".into(), base.clone());
    let e = testing_env(Limits::default(), http).await;
    for (id, url) in [
        ("routed", "https://api.testing.example/echo"),
        ("dotted", "https://api.testing.example./echo"),
    ] {
        e.account(id, &[("scenario", "fetch"), ("url", url)]).await;
        let run = e.sync(id, Mode::Incremental).await;
        assert_eq!(run.status, Status::Succeeded, "{url}: {run:?}");
    }
    assert_eq!(seen.paths(), vec!["/echo", "/echo"]);
}

/// A transport error tells the connector about the URL it wrote, never where the
/// operator's override really sends it.
#[tokio::test]
async fn a_transport_error_does_not_show_the_override_target() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut http = HttpPolicy::default();
    http.overrides.insert(
        "https://api.testing.example".into(),
        format!("http://127.0.0.1:{port}/hidden-base"),
    );
    let e = testing_env(Limits::default(), http).await;
    e.account(
        "refused",
        &[
            ("scenario", "fetch"),
            ("url", "https://api.testing.example/echo"),
        ],
    )
    .await;
    let run = e.sync("refused", Mode::Incremental).await;
    assert_ne!(run.status, Status::Succeeded, "{run:?}");
    let detail = run.error_detail.clone().unwrap_or_default();
    assert!(detail.contains("https://api.testing.example"), "{detail}");
    for hidden in ["127.0.0.1", &port.to_string(), "hidden-base"] {
        assert!(!detail.contains(hidden), "`{hidden}` shows in: {detail}");
    }
}

/// Headers the host owns (the connection, the response's encoding and extent, proxies)
/// are refused by name; nothing is sent.
#[tokio::test]
async fn a_connector_cannot_set_the_headers_the_host_owns() {
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/echo");
    for (i, header) in [
        "Host: api.testing.example",
        "Accept-Encoding: gzip",
        "Range: bytes=0-3",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "Proxy-Authorization: Basic eA==",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("owned{i}");
        e.account(
            &id,
            &[("scenario", "fetch"), ("url", &url), ("header", header)],
        )
        .await;
        let run = e.sync(&id, Mode::Incremental).await;
        assert_eq!(run.status, Status::Failed, "{header}: {run:?}");
        let name = header.split(':').next().unwrap();
        let detail = run.error_detail.unwrap_or_default();
        assert!(
            detail.contains(&format!("header `{name}` is set by the host")),
            "{header}: {detail}"
        );
    }
    assert!(seen.paths().is_empty(), "{:?}", seen.paths());
    // An ordinary header still goes through.
    e.account(
        "plain",
        &[
            ("scenario", "fetch"),
            ("url", &url),
            ("header", "Accept: application/json"),
        ],
    )
    .await;
    let run = e.sync("plain", Mode::Incremental).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
}

/// The platform gets the secret, substituted by the host; the connector never sees it.
/// A platform answer that carries it back — in the body (as is, upper-cased, in base64),
/// a response header, or a redirect's `Location` — ends the run as a `security` event:
/// nothing of the answer reaches the connector (before, it got the echo with the value
/// replaced by `[secret]`, which told it the value was there), nothing is stored, the
/// account is paused until the operator resumes it.
#[tokio::test]
async fn a_platform_echoing_a_secret_ends_the_run_as_a_security_event() {
    use passerelle::model::run::PauseReason;
    const SECRET: &str = "tok-S3CRET-9f8e7d6c5b";
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    for (i, (path, place)) in [
        ("/echo", "response body"),
        ("/echo-upper", "response body"),
        ("/echo-base64", "response body"),
        ("/header-echo", "response header `x-seen-authorization`"),
        ("/redirect-echo", "redirect location"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("leaky{i}");
        let url = format!("{base}{path}");
        e.account(&id, &[("scenario", "fetch"), ("url", &url)])
            .await;
        e.app
            .store
            .set_secret(&id, "api-token", SECRET)
            .await
            .unwrap();
        let run = e.sync(&id, Mode::Incremental).await;
        assert_eq!(run.status, Status::Failed, "{path}: {run:?}");
        assert_eq!(
            run.error_kind
                .map(passerelle::model::run::ErrorKind::as_str),
            Some("security"),
            "{path}: {run:?}"
        );
        let detail = run.error_detail.clone().unwrap_or_default();
        assert!(
            detail.contains(&format!("secret `api-token` came back in the {place}")),
            "{path}: {detail}"
        );
        let everything = format!("{run:?}");
        assert!(!everything.contains(SECRET), "{path}: {everything}");
        assert!(!everything.to_uppercase().contains(&SECRET.to_uppercase()));
        assert!(e.app.store.slots(&id).await.unwrap().is_empty(), "{path}");
        let pause = e.app.store.pause(&id).await.unwrap().expect("paused");
        assert_eq!(pause.reason, PauseReason::Security, "{path}");
        assert!(!format!("{pause:?}").contains(SECRET));
    }
    // The platform did get it, substituted by the host.
    let sent = seen.header_values();
    assert!(sent.contains(&format!("Bearer {SECRET}")), "{sent:?}");
    // Accounts list names, never values.
    let listed = format!("{:?}", e.app.store.list_accounts(None).await.unwrap());
    assert!(listed.contains("api-token") && !listed.contains(SECRET));
}

/// Before: a secret under 8 bytes was replaced by `[secret]` in the answer handed to the
/// connector, an oracle for a platform that reflects text (`guess-1234-end` came back as
/// `guess-[secret]-end`). Now such a value cannot be set, and one stored before (set by
/// an earlier version) echoed back ends the run as a security event like any other.
#[tokio::test]
async fn a_short_secret_is_refused_and_its_echo_is_a_security_event() {
    const SHORT: &str = "1234";
    let (base, _seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/echo");
    e.account("short", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let refused = e
        .app
        .set_secret("short", "api-token", SHORT)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("at least 8 bytes"),
        "{refused}"
    );
    // As an earlier version would have stored it.
    e.app
        .store
        .set_secret("short", "api-token", SHORT)
        .await
        .unwrap();
    let run = e.sync("short", Mode::Incremental).await;
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("security"),
        "{run:?}"
    );
    assert!(!format!("{run:?}").contains("[secret]"), "{run:?}");
}

#[tokio::test]
async fn a_secret_inside_a_template_is_sent_and_never_seen() {
    // Contract 0.1.2: `Authorization: Platform apikey="<key>"`, the author's case.
    const KEY: &str = "pk-T3mpl4te-77aa";
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/ok");
    e.account(
        "templated",
        &[
            ("scenario", "fetch"),
            ("url", &url),
            ("template_secret", "platform-key"),
        ],
    )
    .await;
    e.app
        .store
        .set_secret("templated", "platform-key", KEY)
        .await
        .unwrap();
    let run = e.sync("templated", Mode::Incremental).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    let sent = seen.header_values();
    assert!(
        sent.contains(&format!("Platform apikey=\"{KEY}\"")),
        "{sent:?}"
    );
    let place = e.app.store.slots("templated").await.unwrap()[0]
        .place
        .clone()
        .unwrap();
    assert!(!place.contains(KEY), "{place}");
    // A template naming a secret the manifest does not declare is refused by name.
    e.account(
        "missing",
        &[
            ("scenario", "fetch"),
            ("url", &url),
            ("template_secret", "nope"),
        ],
    )
    .await;
    let run = e.sync("missing", Mode::Incremental).await;
    assert_ne!(run.status, Status::Succeeded);
    assert!(
        run.error_detail
            .as_deref()
            .unwrap_or("")
            .contains("`nope` is not a secret the connector's manifest declares"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_secret_the_account_lacks_is_denied_by_name() {
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/echo");
    e.account(
        "nosecret",
        &[
            ("scenario", "fetch"),
            ("url", &url),
            ("use_secret", "platform-key"),
        ],
    )
    .await;
    let run = e.sync("nosecret", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    assert!(run
        .error_detail
        .unwrap()
        .contains("the account has no secret named `platform-key`"),);
    assert!(seen.paths().is_empty());
}

/// Only the secrets the manifest declares resolve: an account's other secret (set by an
/// operator for another connector, or before this one existed) is refused by name and
/// never sent (before, any name the account had resolved).
#[tokio::test]
async fn a_secret_the_manifest_does_not_declare_is_denied() {
    const OTHER: &str = "other-V4lue-never-sent";
    let (base, seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/echo");
    e.account(
        "undeclared",
        &[
            ("scenario", "fetch"),
            ("url", &url),
            ("use_secret", "other-token"),
        ],
    )
    .await;
    e.app
        .store
        .set_secret("undeclared", "other-token", OTHER)
        .await
        .unwrap();
    let run = e.sync("undeclared", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed, "{run:?}");
    let detail = run.error_detail.unwrap_or_default();
    assert!(
        detail.contains("`other-token` is not a secret the connector's manifest declares"),
        "{detail}"
    );
    assert!(seen.paths().is_empty());
    assert!(!seen.header_values().iter().any(|v| v.contains(OTHER)));
}

/// One budget hit by a hostile scenario: the run ends as `limit-exceeded` naming the
/// budget, nothing of its uncommitted records is stored, and another account's run
/// afterwards succeeds.
async fn ends_on_budget(limits: Limits, settings: &[(&str, &str)], budget: &str) -> Run {
    let e = testing_env(limits, HttpPolicy::default()).await;
    e.account("attacker", settings).await;
    e.account("bystander", &[("scenario", "emit"), ("count", "3")])
        .await;
    let run = e.sync("attacker", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed, "{run:?}");
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("limit-exceeded"),
        "{run:?}"
    );
    let detail = run.error_detail.clone().unwrap_or_default();
    assert!(detail.contains(budget), "{budget} not in: {detail}");
    assert!(e
        .app
        .store
        .appointments("attacker")
        .await
        .unwrap()
        .is_empty());
    let other = e.sync("bystander", Mode::Incremental).await;
    assert_eq!(other.status, Status::Succeeded, "{other:?}");
    run
}

/// Before: log lines had no cap per run (a 600 s loop filled the disk).
#[tokio::test]
async fn a_log_flood_ends_at_the_log_line_budget() {
    let limits = Limits {
        log_lines: 2_000,
        ..Limits::default()
    };
    ends_on_budget(limits, &[("scenario", "log-flood")], "limits.log_lines").await;
}

/// Before: the 64 KiB stdout cap reset at every flush, so a loop printing went on until
/// the deadline.
#[tokio::test]
async fn a_stdout_flood_ends_at_the_log_byte_budget() {
    let limits = Limits {
        log_kib: 256,
        ..Limits::default()
    };
    ends_on_budget(limits, &[("scenario", "stdout-flood")], "limits.log_kib").await;
}

/// Before: one checkpoint could hold 500k records, and SQLite's write lock with them.
#[tokio::test]
async fn records_between_two_checkpoints_are_bounded() {
    let limits = Limits {
        checkpoint_records: 5_000,
        ..Limits::default()
    };
    ends_on_budget(
        limits,
        &[("scenario", "hoard")],
        "limits.checkpoint_records",
    )
    .await;
}

/// Before: records were counted but not sized between checkpoints.
#[tokio::test]
async fn host_memory_of_pending_records_is_bounded() {
    let limits = Limits {
        pending_records_mib: 1,
        checkpoint_records: 1_000_000,
        ..Limits::default()
    };
    ends_on_budget(
        limits,
        &[("scenario", "hoard")],
        "limits.pending_records_mib",
    )
    .await;
}

#[tokio::test]
async fn the_values_a_run_teaches_the_scrubber_are_bounded() {
    let limits = Limits {
        scrub_patterns: 5_000,
        ..Limits::default()
    };
    ends_on_budget(limits, &[("scenario", "hoard")], "limits.scrub_patterns").await;
}

/// Before: record text was only length-checked — a patient's name and e-mail from the
/// platform's answer, put in a slot's `place` by the connector, reached `read` tokens,
/// webhooks and the open-data export; and slots dated beyond the run's window were
/// stored and never removed. Now record text is scrubbed like the run's log lines,
/// slots beyond the window are left out, and a successful run removes every stored slot
/// it did not emit, whatever its date.
#[tokio::test]
async fn record_text_is_scrubbed_and_slots_stay_inside_the_window() {
    let e = testing_env(Limits::default(), HttpPolicy::default()).await;
    // The first appointment's patient: Zoéline0 Quintardeau0, its e-mail and phone.
    let place = "Zoéline0 Quintardeau0 <zoeline.q0@patients.example>, +33 6 55 00 00 42";
    e.account(
        "leaky",
        &[
            ("scenario", "emit"),
            ("count", "3"),
            ("place", place),
            ("far_slot", "yes"),
        ],
    )
    .await;
    let run = e.sync("leaky", Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    let slots = e.app.store.slots("leaky").await.unwrap();
    assert_eq!(slots.len(), 3, "the far slot is left out: {slots:?}");
    for s in &slots {
        let text = s.place.clone().unwrap_or_default();
        for value in ["Zoéline0", "Quintardeau0", "zoeline.q0@", "55 00 00 42"] {
            assert!(!text.contains(value), "{value} stored in a slot: {text}");
        }
    }
    // A slot stored beyond the window (as an earlier version could): the next
    // successful run removes it.
    sqlx::query(
        "INSERT INTO slots (connector, account_id, external_id, practice_id, starts_at,
            starts_at_ms, last_seen_run, updated_at)
         VALUES ('testing', 'leaky', 'slot-2030', 'p1', '2030-02-01T08:00:00+01:00',
            1896159600000, 1, '2026-01-01T00:00:00.000Z')",
    )
    .execute(e.app.store.pool())
    .await
    .unwrap();
    let run = e.sync("leaky", Mode::Incremental).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    assert_eq!(run.counts.slots_removed, 1, "{run:?}");
    let ids: Vec<String> = e
        .app
        .store
        .slots("leaky")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.external_id)
        .collect();
    assert!(!ids.contains(&"slot-2030".to_string()), "{ids:?}");
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

/// Before: `wasi:http` is linked (only sending is refused), and the header maps a
/// guest creates live in the host's resource table — a million entries of up to 128 KiB
/// each; 20,000 maps of 100 KiB took the host to 2.2 GB and the run "succeeded". Now the
/// table holds `limits.wasi_resources` entries and a map `limits.wasi_fields_kib`: the
/// run ends `limit-exceeded`, the host grows by a few MiB, another account runs.
#[tokio::test]
async fn the_wasi_http_resources_a_guest_makes_the_host_hold_are_bounded() {
    // A 100 KiB value: the header map's own limit.
    ends_on_budget(
        Limits::default(),
        &[("scenario", "wasi-http-hoard"), ("count", "20000")],
        "limits.wasi_fields_kib",
    )
    .await;
    // Values just under it: the number of resources.
    let before = rss_mib();
    ends_on_budget(
        Limits::default(),
        &[
            ("scenario", "wasi-http-hoard"),
            ("count", "20000"),
            ("size", "15000"),
        ],
        "limits.wasi_resources",
    )
    .await;
    let after = rss_mib();
    println!(
        "wasi:http hoarding: resident memory {before:.0} MiB -> {after:.0} MiB (+{:.0} MiB)",
        after - before
    );
    assert!(after - before <= 64.0, "grew {:.0} MiB", after - before);
}

/// The hoarding attack with the default limits: the run ends on the first budget it
/// reaches, and the host's resident memory grows by a bounded amount (printed for the
/// record; before, ~40k appointments passed 1 GiB).
#[tokio::test]
async fn a_hoarding_connector_stops_within_the_default_budgets() {
    let e = testing_env(Limits::default(), HttpPolicy::default()).await;
    e.account("hoarder", &[("scenario", "hoard")]).await;
    let before = rss_mib();
    let run = e.sync("hoarder", Mode::Incremental).await;
    let after = rss_mib();
    assert_eq!(run.status, Status::Failed, "{run:?}");
    let detail = run.error_detail.clone().unwrap_or_default();
    assert!(detail.contains("limits."), "{detail}");
    println!(
        "hoarding attack: {detail}; resident memory {before:.0} MiB -> {after:.0} MiB (+{:.0} MiB)",
        after - before
    );
    assert!(after - before < 256.0, "grew {:.0} MiB", after - before);
}

/// A guest blocked in `wasi:io/poll` (sleeping an hour) runs no code the epoch could
/// interrupt: the run's timer ends it at the deadline all the same.
#[tokio::test]
async fn a_guest_blocked_in_poll_ends_at_the_deadline() {
    let limits = Limits {
        deadline_secs: 0.5,
        ..Limits::default()
    };
    let run = ends_on_budget(limits, &[("scenario", "sleep")], "deadline").await;
    // The guest asked to sleep an hour; the run's own time (not the setup's, which a
    // busy machine stretches) ends near the half-second deadline.
    let took = run.duration_ms.expect("an ended run has a duration");
    assert!(took < 5_000, "the blocked run took {took} ms");
}

/// Recursion without end overflows the guest's stack: a trap, not the host's stack.
#[tokio::test]
async fn deep_recursion_is_a_trap() {
    let e = testing_env(Limits::default(), HttpPolicy::default()).await;
    e.account("deep", &[("scenario", "recurse")]).await;
    e.account("calm", &[("scenario", "emit"), ("count", "2")])
        .await;
    let run = e.sync("deep", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed, "{run:?}");
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("trap"),
        "{run:?}"
    );
    assert_eq!(
        e.sync("calm", Mode::Incremental).await.status,
        Status::Succeeded
    );
}

/// A hostile `describe()` (endless loop, memory hoarding, log flood) is rejected at
/// install within the run limits, and the active version keeps serving.
#[tokio::test]
async fn a_hostile_describe_is_rejected_within_bounds() {
    let limits = Limits {
        deadline_secs: 1.0,
        log_lines: 1_000,
        ..Limits::default()
    };
    let e = testing_env(limits, HttpPolicy::default()).await;
    for (file, reason) in [
        ("testing-describe-loop.wasm", "deadline"),
        ("testing-describe-membomb.wasm", "describe() failed"),
        ("testing-describe-log-flood.wasm", "limits.log_lines"),
    ] {
        let started = Instant::now();
        let err = format!(
            "{:#}",
            e.app
                .install_plugin(&common::variant(file))
                .await
                .map(|_| ())
                .unwrap_err()
        );
        assert!(err.contains("describe() failed"), "{file}: {err}");
        assert!(err.contains(reason), "{file}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{file}: {:?}",
            started.elapsed()
        );
    }
    let active = e
        .app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.1.0");
}

#[tokio::test]
async fn a_panic_fails_only_that_run() {
    let e = env(&sqlite(), Config::default()).await.with_testing().await;
    e.account("boom", &[("scenario", "panic")]).await;
    e.account("calm", &[("scenario", "emit"), ("count", "2")])
        .await;
    let run = e.sync("boom", Mode::Incremental).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("trap")
    );
    assert!(
        run.error_detail.as_deref().unwrap().contains("panic"),
        "{run:?}"
    );
    for _ in 0..3 {
        assert_eq!(
            e.sync("calm", Mode::Incremental).await.status,
            Status::Succeeded
        );
    }
}

#[tokio::test]
async fn the_request_budget_is_enforced() {
    let (base, seen) = server().await;
    let limits = Limits {
        http_requests: 3,
        ..Limits::default()
    };
    let e = testing_env(limits, allow_private()).await;
    let url = format!("{base}/echo");
    e.account(
        "chatty",
        &[("scenario", "requests"), ("url", &url), ("count", "10")],
    )
    .await;
    let run = e.sync("chatty", Mode::Incremental).await;
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("limit-exceeded"),
        "{run:?}"
    );
    assert!(run.error_detail.unwrap().contains("HTTP requests"));
    assert_eq!(seen.paths().len(), 3);
    assert_eq!(run.counts.http_requests, 3);
}

#[tokio::test]
async fn a_slow_platform_times_out_as_unavailable() {
    let (base, _seen) = server().await;
    let limits = Limits {
        http_timeout_secs: 0.3,
        ..Limits::default()
    };
    let e = testing_env(limits, allow_private()).await;
    let url = format!("{base}/slow");
    e.account("slow", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let started = Instant::now();
    let run = e.sync("slow", Mode::Incremental).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("unavailable"),
        "{run:?}"
    );
    assert!(run.error_detail.unwrap().contains("timed out"));
}

#[tokio::test]
async fn a_429_slows_every_run_of_the_platform() {
    let (base, _seen) = server().await;
    let e = testing_env(Limits::default(), allow_private()).await;
    let url = format!("{base}/limited");
    e.account(
        "first",
        &[("scenario", "requests"), ("url", &url), ("count", "1")],
    )
    .await;
    e.account(
        "second",
        &[("scenario", "requests"), ("url", &url), ("count", "1")],
    )
    .await;
    // `first` gets the 429; the SDK resends after the platform's Retry-After (1 s).
    // `second` starts once the platform is blocked (an event, not a delay) and waits
    // for it too.
    let started = Instant::now();
    let (first, (second, second_took)) = tokio::join!(e.sync("first", Mode::Incremental), async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while e.app.http.limiters().blocked_for("testing").is_none() {
            assert!(
                Instant::now() < deadline,
                "the 429 never blocked the platform"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        (e.sync("second", Mode::Incremental).await, t.elapsed())
    });
    assert_eq!(first.status, Status::Succeeded, "{first:?}");
    assert_eq!(first.counts.http_requests, 2, "the 429, then the retry");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    assert_eq!(second.counts.http_requests, 1);
    assert!(
        second_took >= Duration::from_millis(600),
        "another account of the platform waited for the Retry-After: {second_took:?}"
    );
}

#[tokio::test]
async fn a_schema_drift_reported_by_the_sdk_ends_the_run_as_drift() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/slots",
        get(|| async { r#"{"slots":[{"start_date":"2030-01-01"},{"start_date":7}]}"# }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slots", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let e = testing_env(Limits::default(), allow_private()).await;
    e.account("drifty", &[("scenario", "drift"), ("url", &url)])
        .await;
    let run = e.sync("drifty", Mode::Incremental).await;
    assert_eq!(run.status, Status::Drift, "{run:?}");
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("schema-drift")
    );
    assert_eq!(
        run.error_detail.as_deref(),
        Some("GET /slots: at $.slots[1].start_date expected a string, found integer")
    );
}

#[tokio::test]
async fn missing_required_settings_fail_before_the_connector_runs() {
    let e = env(&sqlite(), Config::default()).await.with_testing().await;
    e.account("bare", &[]).await;
    let run = e.sync("bare", Mode::Incremental).await;
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("invalid-config")
    );
    assert!(run.error_detail.unwrap().contains("setting `scenario`"));
}

#[tokio::test]
async fn a_failed_checkpoint_loses_only_uncommitted_records() {
    for db in databases().await {
        let e = env(&db, Config::default()).await.with_testing().await;
        e.account("cp", &[("scenario", "checkpoint-fail")]).await;
        let run = e.sync("cp", Mode::Incremental).await;
        assert_eq!(run.status, Status::Failed, "{}", db.name);
        assert!(
            run.error_detail.unwrap().contains("refused: true"),
            "{}",
            db.name
        );
        let ids: Vec<String> = e
            .app
            .store
            .appointments("cp")
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.record.external_id)
            .collect();
        assert_eq!(ids, vec!["apt-0", "apt-1", "apt-2"], "{}", db.name);
        assert_eq!(
            e.app.store.cursor("cp").await.unwrap().as_deref(),
            Some("first")
        );
        assert_eq!(run.cursor_after.as_deref(), Some("first"));
        assert_eq!(run.counts.appointments_added, 3);
    }
}

#[tokio::test]
async fn broken_components_are_rejected_with_a_reason() {
    let e = env(&sqlite(), Config::default()).await.with_testing().await;
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let err = format!("{:#}", e.app.install_plugin(&garbage).await.unwrap_err());
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    // A core module (not a component) is refused too.
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, wat_module()).unwrap();
    let err = format!("{:#}", e.app.install_plugin(&module).await.unwrap_err());
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    // The active version keeps serving.
    let active = e
        .app
        .store
        .active_connector("testing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, "0.1.0");
}

fn wat_module() -> Vec<u8> {
    // (module) in binary form.
    vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
}

#[tokio::test]
async fn a_restart_loads_the_precompiled_component_from_the_cache() {
    use passerelle::runtime::sandbox::{Origin, Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config.clone()).unwrap();
    let loaded = first.load_file(&component("testing")).unwrap();
    assert_eq!(loaded.origin, Origin::Compiled);
    drop(first);
    let second = Runtime::new(config).unwrap();
    let started = Instant::now();
    let loaded = second.load_file(&component("testing")).unwrap();
    assert_eq!(loaded.origin, Origin::Cache);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

/// Several runs of one daemon loading a new version at once all get it: each compiles
/// it and the cache keeps one artifact (the benchmark of several daemons once saw all
/// but one of them fail on the cache file's temporary name).
#[tokio::test]
async fn a_component_loaded_by_several_runs_at_once_is_cached_once() {
    use passerelle::runtime::sandbox::{Origin, Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let runtime = std::sync::Arc::new(Runtime::new(config.clone()).unwrap());
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let runtime = runtime.clone();
            std::thread::spawn(move || runtime.load_file(&component("testing")).map(|l| l.origin))
        })
        .collect();
    for load in loads {
        let origin = load.join().unwrap().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(matches!(origin, Origin::Compiled | Origin::Cache));
    }
    let artifacts: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "cwasm"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let again = Runtime::new(config).unwrap();
    assert_eq!(
        again.load_file(&component("testing")).unwrap().origin,
        Origin::Cache
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn the_record_budget_is_enforced() {
    let limits = Limits {
        records: 10,
        ..Limits::default()
    };
    let e = testing_env(limits, HttpPolicy::default()).await;
    e.account("prolific", &[("scenario", "emit"), ("count", "50")])
        .await;
    let run = e.sync("prolific", Mode::Full).await;
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("limit-exceeded"),
        "{run:?}"
    );
    assert!(run
        .error_detail
        .unwrap()
        .contains("records: the run may emit 10"));
    assert!(e
        .app
        .store
        .appointments("prolific")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_oversized_response_is_refused() {
    let (base, _seen) = server().await;
    let limits = Limits {
        response_mib: 1,
        ..Limits::default()
    };
    let e = testing_env(limits, allow_private()).await;
    let url = format!("{base}/big");
    e.account("big", &[("scenario", "fetch"), ("url", &url)])
        .await;
    let run = e.sync("big", Mode::Incremental).await;
    assert_eq!(
        run.error_kind
            .map(passerelle::model::run::ErrorKind::as_str),
        Some("unavailable"),
        "{run:?}"
    );
    assert!(run
        .error_detail
        .unwrap()
        .contains("larger than 1048576 bytes"));
}

/// A component with two linear memories is refused: the memory limit is per memory, so
/// several would multiply it (before, four were allowed per run).
#[test]
fn a_component_with_two_memories_is_refused() {
    use passerelle::runtime::sandbox::{Runtime, RuntimeConfig};
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let two = wat::parse_str(
        r#"(component
            (core module $a (memory 1))
            (core module $b (memory 1))
            (core instance (instantiate $a))
            (core instance (instantiate $b)))"#,
    )
    .unwrap();
    let err = runtime.load_bytes(&two).map(|_| ()).unwrap_err();
    println!("two memories: {err}");
    assert!(err.to_string().contains("2 Wasm linear memories"), "{err}");
}

/// A candidate that compiles but is not a connector leaves no compiled artifact in the
/// cache (before, every rejected candidate left one behind).
#[test]
fn nothing_is_cached_for_a_rejected_candidate() {
    use passerelle::runtime::sandbox::{Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let empty =
        wat::parse_str("(component (core module $m) (core instance (instantiate $m)))").unwrap();
    let err = runtime.load_bytes(&empty).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), "wrong-world", "{err}");
    assert!(walk(dir.path()).is_empty(), "{:?}", walk(dir.path()));
    // An accepted one is cached.
    runtime.load_file(&component("testing")).unwrap();
    assert_eq!(walk(dir.path()).len(), 1, "{:?}", walk(dir.path()));
}

/// A component over `runtime.max_component_bytes` is refused from its size, before it
/// is read or compiled.
#[test]
fn an_oversized_component_is_refused_before_compiling() {
    use passerelle::runtime::sandbox::{Runtime, RuntimeConfig};
    let runtime = Runtime::new(RuntimeConfig {
        max_component_bytes: 64 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let err = format!(
        "{:#}",
        runtime
            .load_file(&component("testing"))
            .map(|_| ())
            .unwrap_err()
    );
    assert!(
        err.contains("components may be at most 65536 bytes"),
        "{err}"
    );
}

/// A component slower to compile than `runtime.max_compile_secs` is refused at install;
/// the compile that finishes late keeps nothing in the cache.
#[tokio::test]
async fn a_component_slow_to_compile_is_refused_and_not_cached() {
    let mut config = Config::default();
    config.runtime.max_compile_secs = 0.000_001;
    let e = env(&sqlite(), config).await;
    let err = e
        .app
        .install_plugin(&component("doctolib"))
        .await
        .map(|_| ())
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("took more than"), "{text}");
    assert!(text.contains("runtime.max_compile_secs"), "{text}");

    use passerelle::runtime::sandbox::{Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let bytes = std::fs::read(component("testing")).unwrap();
    let past = Some((Instant::now(), 0.0));
    let err = runtime
        .load_bytes_within(&bytes, past)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), "too-slow-to-compile");
    assert!(walk(dir.path()).is_empty(), "{:?}", walk(dir.path()));
}

/// A quarantined item's drift report is shown to every reader: it is scrubbed like any
/// connector text, of the item's own strings (a map key naming a patient) and patterns.
#[tokio::test]
async fn a_quarantine_report_is_scrubbed_of_the_items_text() {
    let mut config = config(Limits::default(), HttpPolicy::default());
    config.plugins.drift_policy.insert(
        "testing".into(),
        passerelle::service::config::DriftPolicy::Quarantine,
    );
    let e = env(&sqlite(), config).await.with_testing().await;
    e.account(
        "aside",
        &[
            ("scenario", "quarantine-leak"),
            ("name", "Zoéline Quintardeau"),
            ("email", "zoeline.q@patients.example"),
        ],
    )
    .await;
    let run = e.sync("aside", Mode::Full).await;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    assert_eq!(run.counts.quarantined, 1, "{run:?}");
    let items = e
        .app
        .quarantined(passerelle::model::quarantine::QuarantineFilter {
            with_items: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let report = items[0].drift.to_string();
    for value in ["Zoéline", "Quintardeau", "zoeline.q@"] {
        assert!(!report.contains(value), "{value} in the report: {report}");
    }
    assert!(
        report.starts_with("GET /patients: at $.patients["),
        "{report}"
    );
    // The item itself is kept as received, for `patients:read`.
    assert!(items[0].item.as_deref().unwrap().contains("Quintardeau"));
}
