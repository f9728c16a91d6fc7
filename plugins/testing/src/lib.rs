//! `testing`: a purpose-built hostile connector for the host's sandbox tests and benches.
//!
//! Its behaviour is chosen per account by the `scenario` setting, so one component
//! exercises every defence of the host: deadlines, memory limits, the HTTP allowlist,
//! secret handling, panics, checkpoint atomicity and PII scrubbing. Never install it in
//! production: some scenarios try to leak data on purpose.

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::{chrono, Window};
use passerelle_sdk::{
    emit, http, info, parameter, Account, Appointment, AppointmentStatus, Connector, Manifest,
    Patient, RateLimit, Slot, Summary, SyncError, SyncMode, SyncRequest,
};

struct Testing;

impl Connector for Testing {
    fn describe() -> Manifest {
        if cfg!(feature = "describe-panic") {
            panic!("testing connector: describe() panics in this build");
        }
        if cfg!(feature = "describe-loop") {
            spin();
        }
        if cfg!(feature = "describe-membomb") {
            hoard_memory();
        }
        if cfg!(feature = "describe-log-flood") {
            loop {
                info!("describe() floods the log: {}", "z".repeat(160));
            }
        }
        let mut manifest = Manifest {
            name: "testing".into(),
            version: if cfg!(feature = "escalate") {
                "0.2.0"
            } else {
                env!("CARGO_PKG_VERSION")
            }
            .into(),
            platform: "Testing platform".into(),
            allowed_hosts: vec![
                "http://127.0.0.1:*".into(),
                "http://localhost:*".into(),
                "https://api.testing.example".into(),
            ],
            rate_limit: RateLimit {
                requests_per_second: 1000,
                burst: 1000,
            },
            settings: vec![
                parameter("scenario", "what the run does (see the crate docs)", true),
                parameter("count", "how many records or requests", false),
                parameter("url", "URL the HTTP scenarios call", false),
                parameter(
                    "template_secret",
                    "fetch: send this secret as Authorization: Platform apikey=\"…\"",
                    false,
                ),
            ],
            secrets: vec![
                parameter("api-token", "token sent by the fetch scenario", false),
                parameter(
                    "platform-key",
                    "a secret the fetch scenario can send in a template",
                    false,
                ),
            ],
        };
        if cfg!(feature = "escalate") {
            manifest
                .allowed_hosts
                .push("https://extra.testing.example".into());
            manifest.rate_limit.requests_per_second = 2000;
            manifest.secrets.push(parameter(
                "extra-key",
                "a secret the 0.2.0 build adds",
                false,
            ));
        }
        manifest
    }

    fn check(account: Account) -> Result<(), SyncError> {
        account.setting("scenario").map(|_| ())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        let account = &req.account;
        let count: u32 = account
            .setting_opt("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(10);
        match account.setting("scenario")? {
            "nop" => Ok(summary(None, None)),
            "emit" => emit_records(&req, count),
            "loop" => spin(),
            "membomb" => hoard_memory(),
            // Blocks in `wasi:io/poll` (a monotonic-clock subscription) for an hour: no
            // guest code runs for the epoch deadline to interrupt.
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(summary(None, Some("woke up".into())))
            }
            // Recursion without end: the guest's stack overflows.
            "recurse" => {
                let depth = recurse(std::hint::black_box(1));
                Ok(summary(None, Some(format!("depth {depth}"))))
            }
            "panic" => panic!("testing connector panicked on purpose"),
            // Makes the host hold `wasi:http` header maps (resources in the host's table,
            // not in the guest's memory), each with a large value, and never drops them:
            // the run's resource and header-map limits must end it.
            "wasi-http-hoard" => {
                let size: usize = account
                    .setting_opt("size")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(100 * 1024);
                let total: u32 = account
                    .setting_opt("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(u32::MAX);
                let value = vec![b'x'; size];
                let name = "x-hoard".to_string();
                let mut kept = Vec::new();
                while (kept.len() as u32) < total {
                    let fields = wasi::http::types::Fields::new();
                    // Refused past the host's header-map limit: kept all the same.
                    let _ = fields.append(&name, &value);
                    kept.push(fields);
                }
                Ok(summary(
                    None,
                    Some(format!("kept {} header maps", kept.len())),
                ))
            }
            // Emits appointments in batches of `batch` and never checkpoints: what a
            // connector hoarding records on the host looks like.
            "hoard" => {
                let batch: u32 = account
                    .setting_opt("batch")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1000);
                let total: u32 = account
                    .setting_opt("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(u32::MAX);
                let mut i = 0;
                while i < total {
                    let n = batch.min(total - i);
                    emit::appointments(&(i..i + n).map(appointment).collect::<Vec<_>>())?;
                    i += n;
                }
                Ok(summary(None, Some(format!("hoarded {total}"))))
            }
            // Logs without end, through the `log` import or stdout.
            "log-flood" => loop {
                info!(
                    "flooding the host's log with a line of some length: {}",
                    "x".repeat(160)
                );
            },
            "stdout-flood" => loop {
                println!(
                    "flooding stdout with a line of some length: {}",
                    "y".repeat(160)
                );
            },
            // Asks to be left alone for `retry_after` seconds (default u32::MAX: 136 years).
            "rate-limited" => Err(SyncError::RateLimited(Some(
                account
                    .setting_opt("retry_after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u32::MAX),
            ))),
            "fetch" => fetch(account),
            // Sets an item aside (policy `quarantine`) whose drift report carries the
            // item's own text: a map key naming a patient, an e-mail.
            "quarantine-leak" => {
                let name = account.setting("name")?;
                let item = passerelle_sdk::serde_json::json!({ name: {"note": "x"} });
                emit::quarantine(
                    passerelle_sdk::Drift {
                        endpoint: "GET /patients".into(),
                        path: format!("$.patients[\"{name}\"].note"),
                        expected: "object".into(),
                        found: format!("text from {}", account.setting("email")?),
                    },
                    &item,
                )?;
                emit::checkpoint("quarantined")?;
                Ok(summary(None, Some("set one item aside".into())))
            }
            "drift" => {
                #[derive(passerelle_sdk::serde::Deserialize)]
                #[serde(crate = "passerelle_sdk::serde")]
                #[allow(dead_code)]
                struct Expected {
                    slots: Vec<ExpectedSlot>,
                }
                #[derive(passerelle_sdk::serde::Deserialize)]
                #[serde(crate = "passerelle_sdk::serde")]
                #[allow(dead_code)]
                struct ExpectedSlot {
                    start_date: String,
                }
                http::get_json::<Expected>(account.setting("url")?)?;
                Ok(summary(None, Some("parsed".into())))
            }
            "requests" => {
                let url = account.setting("url")?;
                for _ in 0..count {
                    http::get(url).send()?;
                }
                Ok(summary(None, Some(format!("{count} requests"))))
            }
            "checkpoint-fail" => {
                emit::appointments(&(0..3).map(appointment).collect::<Vec<_>>())?;
                emit::checkpoint("first")?;
                emit::appointments(&(3..5).map(appointment).collect::<Vec<_>>())?;
                // An oversized cursor is refused by the host: nothing of 3..5 commits.
                let refused = emit::checkpoint(&"x".repeat(1 << 16)).is_err();
                emit::appointments(&[appointment(5)])?;
                Err(SyncError::Internal(format!(
                    "gave up after a refused checkpoint (refused: {refused})"
                )))
            }
            other => Err(SyncError::InvalidConfig(format!(
                "unknown scenario `{other}`"
            ))),
        }
    }
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn hoard_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 16]);
    recurse(frame[n as usize % 16] + 1) + 1
}

fn summary(cursor: Option<String>, message: Option<String>) -> Summary {
    Summary { cursor, message }
}

/// Deterministic fake patient data, so tests know what must never be logged.
fn appointment(i: u32) -> Appointment {
    Appointment {
        external_id: format!("apt-{i}"),
        starts_at: format!("2030-01-{:02}T09:{:02}:00+01:00", i % 28 + 1, i % 60),
        ends_at: Some(format!(
            "2030-01-{:02}T09:{:02}:30+01:00",
            i % 28 + 1,
            i % 60
        )),
        status: AppointmentStatus::Booked,
        practitioner: Some("dr-1".into()),
        visit_motive: Some("consultation".into()),
        patient: Some(Patient {
            external_id: Some(format!("pat-{i}")),
            first_name: format!("Zoéline{i}"),
            last_name: format!("Quintardeau{i}"),
            birth_date: Some(format!("19{:02}-03-{:02}", 40 + i % 60, i % 28 + 1)),
            phone: Some(format!(
                "+33 6 55 {:02} {:02} {:02}",
                i % 100,
                (i / 100) % 100,
                42
            )),
            email: Some(format!("zoeline.q{i}@patients.example")),
        }),
        updated_at: None,
    }
}

fn emit_records(req: &SyncRequest, count: u32) -> Result<Summary, SyncError> {
    let account = &req.account;
    let every: u32 = account
        .setting_opt("checkpoint_every")
        .and_then(|c| c.parse().ok())
        .unwrap_or(count.max(1));
    let omit: Vec<String> = account
        .setting_opt("omit")
        .map(|o| o.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut batch = Vec::new();
    for i in 0..count {
        let apt = appointment(i);
        if omit.contains(&apt.external_id) {
            continue;
        }
        // A careless connector logging patient data: the host must scrub it.
        if i == 0 {
            let p = apt.patient.as_ref().expect("patient");
            info!(
                "first patient {} {} born {} ({}, {})",
                p.first_name,
                p.last_name,
                p.birth_date.clone().unwrap_or_default(),
                p.phone.clone().unwrap_or_default(),
                p.email.clone().unwrap_or_default()
            );
            eprintln!("stderr also sees {}", p.last_name);
            // Then chatter before the patient is emitted: the host must hold the line
            // above until it has learned the patient's values, however many follow.
            let chatter: u32 = account
                .setting_opt("chatter")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            for n in 0..chatter {
                info!("chatter line {n}");
            }
        }
        batch.push(apt);
        if batch.len() as u32 >= every {
            emit::appointments(&batch)?;
            batch.clear();
            emit::checkpoint(&format!("after-{i}"))?;
        }
    }
    emit::appointments(&batch)?;
    // Availability from the run's clock: a day later, hour by hour.
    let window = Window::parse(&req.window)?.from_now();
    let first = window.start.0 + chrono::Duration::days(1);
    let place = account.setting_opt("place").unwrap_or("centre").to_string();
    let mut slots: Vec<Slot> = (0..count.min(5))
        .map(|i| Slot {
            external_id: format!("slot-{i}"),
            starts_at: (first + chrono::Duration::hours(i.into())).to_rfc3339(),
            ends_at: None,
            practitioner: Some("dr-1".into()),
            visit_motive: Some("consultation".into()),
            place: Some(place.clone()),
        })
        .collect();
    // A slot far beyond the window the run was asked for (the host leaves it out).
    if account.setting_opt("far_slot").is_some() {
        slots.push(Slot {
            external_id: "slot-far".into(),
            starts_at: "2099-01-01T09:00:00+01:00".into(),
            ends_at: None,
            practitioner: None,
            visit_motive: None,
            place: None,
        });
    }
    emit::slots(&slots)?;
    if let Some(gone) = account.setting_opt("delete") {
        emit::deleted_appointments(&gone.split(',').map(str::to_string).collect::<Vec<_>>())?;
    }
    let mode = match req.mode {
        SyncMode::Full => "full",
        SyncMode::Incremental => "incremental",
    };
    Ok(summary(
        Some(format!("done-{count}")),
        Some(format!("{mode} run emitted {count}")),
    ))
}

/// Calls `url` (with the account's `api-token` if it has one) and tries to smuggle the
/// answer out through every channel it has: summary, a stored record, a log line.
fn fetch(account: &Account) -> Result<Summary, SyncError> {
    let mut req = http::get(account.setting("url")?);
    if account.has_secret("api-token") {
        req = req
            .bearer("api-token")
            .secret_header("x-api-key", "api-token");
    }
    // A header the connector sets itself (`Name: value`), such as one the host owns.
    if let Some((name, value)) = account
        .setting_opt("header")
        .and_then(|h| h.split_once(':'))
    {
        req = req.header(name.trim(), value.trim());
    }
    // A secret the account may not have: the host must refuse to send the request.
    if let Some(name) = account.setting_opt("use_secret") {
        req = req.secret_header("x-other", name);
    }
    // The secret inside a template (contract 0.1.2): `Platform apikey="<secret>"`.
    #[cfg(not(any(feature = "contract-0-1-0", feature = "contract-0-1-1")))]
    if let Some(name) = account.setting_opt("template_secret") {
        req = req.secret_template("authorization", "Platform apikey=\"", name, "\"");
    }
    let response = req.send()?;
    let body = String::from_utf8_lossy(&response.body).to_string();
    let headers = format!("{:?}", response.headers);
    info!("fetched {} bytes: {body} {headers}", body.len());
    // A day after the run's clock (earlier contracts have none: a fixed date).
    let starts_at = passerelle_sdk::clock::now()
        .map(|now| (now.0 + chrono::Duration::days(1)).to_rfc3339())
        .unwrap_or_else(|| "2030-01-01T00:00:00+00:00".into());
    emit::slots(&[Slot {
        external_id: "echo".into(),
        starts_at,
        ends_at: None,
        practitioner: None,
        visit_motive: None,
        place: Some(format!("{body} {headers}")),
    }])?;
    Ok(summary(
        Some("fetched".into()),
        Some(format!("status {} body {body}", response.status)),
    ))
}

passerelle_sdk::export_connector!(Testing);
