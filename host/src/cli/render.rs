//! The command line's one renderer: every command's result is an [`Output`], printed
//! as text (tables with a header row, one line per item) or, with `--json`, as JSON.
//! Whether the result came from the database here or from a daemon does not change a
//! byte. A closed pipe (`passerelle runs | head`) ends the output quietly.

use super::printable::printable;
use super::render_plugins::{install_line, rejections_text, versions_text};
use passerelle_model::daemon::DaemonRow;
use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use passerelle_model::connector::Activation;
use passerelle_model::connector::{Canary, Rejection};
use passerelle_model::pause::Pause;
use passerelle_model::quarantine::QuarantinedItem;
use passerelle_model::run::{Run, Status};
use passerelle_service::accounts::CheckedAccount;
use passerelle_service::check::AccountCheck;
use passerelle_service::connectors::{ConnectorView, InstallAnswer};
use passerelle_service::practices::PracticeView;
use passerelle_service::records::{AppointmentPage, SlotPage};
use passerelle_store::practices::Account;

/// What a command produced.
#[derive(Debug)]
pub enum Output {
    PracticeAdded(PracticeView),
    Practices(Vec<PracticeView>),
    Schedule(PracticeView),
    /// A practice in full (text: [`super::render_practices`]).
    Practice(PracticeView),
    /// An account in full.
    Account(Account),
    AccountAdded(CheckedAccount),
    AccountUpdated(CheckedAccount),
    AccountRemoved(String),
    BackedUp(passerelle_service::backup::BackupReport),
    Restored(passerelle_service::backup::RestoreReport),
    Accounts(Vec<Account>),
    AccountChecked(AccountCheck),
    SecretStored {
        account: String,
        name: String,
    },
    Paused(Vec<Pause>),
    Quarantined(Vec<QuarantinedItem>),
    /// A drift pause lifted, and the re-drive run (finished).
    Resumed {
        account: String,
        runs: Vec<Run>,
    },
    Connectors {
        versions: Vec<ConnectorView>,
        rejections: Vec<Rejection>,
    },
    /// Per file: what installing it did, or why it was refused.
    Installed(Vec<(String, Result<InstallAnswer, String>)>),
    /// Per file: what installing it would do, or why it would be refused.
    Validated(Vec<(String, Result<String, String>)>),
    Activated(Activation),
    CanaryStarted(Canary),
    CanaryStopped(String),
    Rejections(Vec<Rejection>),
    Runs(Vec<Run>),
    /// The live daemons on the database.
    Daemons(Vec<DaemonRow>),
    KeyRotated(passerelle_service::accounts::KeyRotation),
    Audit(Vec<passerelle_model::audit::AuditEntry>),
    TokenCreated(passerelle_service::tokens::CreatedToken),
    Tokens(Vec<passerelle_model::token::ApiToken>),
    TokenRevoked(String),
    AuditVerified(passerelle_model::audit::AuditReport),
    /// The runs of a sync, finished.
    Synced {
        practice: String,
        runs: Vec<Run>,
    },
    /// Patients as initials unless the page carries their fields (`--show-patients`).
    Appointments(AppointmentPage),
    Slots {
        account: String,
        page: SlotPage,
    },
    /// A page of the change feed (text: [`super::render_records`]).
    Changes(passerelle_service::feed::ChangePage),
    SubscriptionAdded(passerelle_service::subscriptions::CreatedSubscription),
    Subscriptions(Vec<passerelle_service::subscriptions::SubscriptionView>),
    SubscriptionRemoved(String),
    SubscriptionReplayed(passerelle_service::subscriptions::SubscriptionView),
    Exported(passerelle_service::export::ExportReport),
    /// A shadow replay's report (fails the command when a difference is unexpected).
    Shadow(passerelle_service::flight::shadow::ShadowReport),
    /// A run's cassette, written into `dir`.
    CassetteWritten {
        dir: std::path::PathBuf,
        cassette: passerelle_service::flight::RunCassette,
    },
    /// Text made by the command itself (`connector new`, `connector build`, `serve
    /// --check-config`), printed as it is in both modes.
    Text(String),
    /// `connector test` reports (text: [`super::render_kit`]): one cassette's
    /// (`many` false: JSON is the report), or those of a folder of cassettes (an array).
    ConnectorTest {
        reports: Vec<passerelle_kit::TestReport>,
        many: bool,
        /// Counts only, not the listings.
        summary: bool,
    },
    /// What the demo did: each phase's runs, then its closing words.
    #[cfg(feature = "dev")]
    Demo(passerelle_dev::demo::DemoReport),
    /// A command that printed nothing (the daemon and the simulator, once stopped).
    Nothing,
}

impl Output {
    /// Prints the output to stdout (text or JSON). A closed pipe is not an error.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let text = if let Output::Text(text) = self {
            text.clone()
        } else if let Output::Nothing = self {
            return Ok(());
        } else if json {
            let mut t = serde_json::to_string_pretty(&self.json())?;
            t.push('\n');
            t
        } else {
            self.text()
        };
        write_stdout(&text)
    }

    /// Why the command failed although it produced this output (runs that did not
    /// succeed, components refused): the exit code is then non-zero.
    pub fn failure(&self) -> Option<String> {
        match self {
            Output::Synced { practice, runs }
            | Output::Resumed {
                account: practice,
                runs,
            } => {
                let failed = runs
                    .iter()
                    .filter(|r| r.status != Status::Succeeded)
                    .count();
                (failed > 0).then(|| {
                    let scope = runs.first().map(|r| r.practice_id.as_str()).unwrap_or(practice);
                    format!(
                        "{failed} of {} run(s) did not succeed (details: passerelle runs --practice {scope})",
                        runs.len()
                    )
                })
            }
            Output::Shadow(r) => (r.unexpected > 0).then(|| {
                format!(
                    "{} of {} cassette(s) with an unexpected difference",
                    r.unexpected,
                    r.cases.len()
                )
            }),
            Output::Installed(files) => {
                let failed = files.iter().filter(|(_, r)| r.is_err()).count();
                (failed > 0).then(|| format!("{failed} component(s) rejected"))
            }
            Output::AccountChecked(c) => {
                (!c.ok).then(|| format!("account `{}` cannot work yet", c.account_id))
            }
            Output::Validated(files) => {
                let failed = files.iter().filter(|(_, r)| r.is_err()).count();
                (failed > 0).then(|| format!("{failed} component(s) would be rejected"))
            }
            Output::AuditVerified(r) => (!r.problems.is_empty())
                .then(|| format!("the audit trail is broken in {} place(s)", r.problems.len())),
            Output::ConnectorTest { reports, .. } => {
                let failed = reports.iter().filter(|r| !r.passed()).count();
                match (failed, reports.len()) {
                    (0, _) => None,
                    (_, 1) => Some("connector test failed".into()),
                    (n, of) => Some(format!("connector test failed on {n} of {of} cassettes")),
                }
            }
            #[cfg(feature = "dev")]
            Output::Demo(report) => (report.failed > 0)
                .then(|| format!("{} run(s) did not succeed (see above)", report.failed)),
            _ => None,
        }
    }

    /// The output as JSON: the result's own shape (patients as initials unless shown).
    pub fn json(&self) -> Value {
        fn v<T: Serialize>(t: &T) -> Value {
            serde_json::to_value(t).expect("outputs serialise")
        }
        match self {
            Output::PracticeAdded(p) | Output::Schedule(p) | Output::Practice(p) => v(p),
            Output::Account(a) => v(a),
            Output::Practices(p) => v(p),
            Output::AccountAdded(a) | Output::AccountUpdated(a) => v(a),
            Output::AccountRemoved(id) => json!({"removed": id}),
            Output::BackedUp(r) => v(r),
            Output::Restored(r) => v(r),
            Output::Accounts(a) => v(a),
            Output::AccountChecked(c) => v(c),
            Output::SecretStored { account, name } => json!({"account": account, "secret": name}),
            Output::Paused(p) => v(p),
            Output::Quarantined(q) => v(q),
            Output::Resumed { runs, .. } | Output::Runs(runs) | Output::Synced { runs, .. } => {
                v(runs)
            }
            Output::Daemons(d) => v(d),
            Output::KeyRotated(k) => v(k),
            Output::Audit(a) => v(a),
            Output::TokenCreated(t) => v(t),
            Output::Tokens(t) => v(t),
            Output::TokenRevoked(name) => json!({"revoked": name}),
            Output::AuditVerified(r) => v(r),
            Output::Connectors {
                versions,
                rejections,
            } => json!({"versions": versions, "rejections": rejections}),
            Output::Installed(files) => Value::Array(
                files
                    .iter()
                    .map(|(file, r)| match r {
                        Ok(i) => json!({"file": file, "installed": i}),
                        Err(e) => json!({"file": file, "error": e}),
                    })
                    .collect(),
            ),
            Output::Validated(files) => Value::Array(
                files
                    .iter()
                    .map(|(file, r)| match r {
                        Ok(found) => json!({"file": file, "valid": true, "found": found}),
                        Err(e) => json!({"file": file, "valid": false, "error": e}),
                    })
                    .collect(),
            ),
            Output::Activated(a) => v(a),
            Output::CanaryStarted(c) => v(c),
            Output::CanaryStopped(name) => json!({"connector": name, "canary": null}),
            Output::Rejections(r) => v(r),
            Output::Appointments(page) => v(page),
            Output::Slots { page, .. } => v(page),
            Output::Changes(page) => v(page),
            Output::SubscriptionAdded(s) => v(s),
            Output::Subscriptions(s) => v(s),
            Output::SubscriptionRemoved(id) => json!({"removed": id}),
            Output::SubscriptionReplayed(s) => v(s),
            Output::Exported(r) => v(r),
            Output::Shadow(r) => v(r),
            Output::CassetteWritten { dir, cassette } => json!({
                "run_id": cassette.run_id,
                "connector": cassette.connector,
                "version": cassette.version,
                "reason": cassette.reason,
                "recorded_at": cassette.recorded_at,
                "exchanges": cassette.cassette.exchanges.len(),
                "dir": dir,
            }),
            Output::Text(text) => Value::String(text.clone()),
            Output::ConnectorTest { reports, many, .. } => match (many, reports.first()) {
                (false, Some(report)) => v(report),
                _ => v(reports),
            },
            #[cfg(feature = "dev")]
            Output::Demo(report) => serde_json::json!({
                "phases": report.phases.iter().map(|(title, runs)| serde_json::json!({"title": title, "runs": v(runs)})).collect::<Vec<_>>(),
                "failed": report.failed,
            }),
            Output::Nothing => Value::Null,
        }
    }

    /// The output as text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        match self {
            Output::PracticeAdded(p) => {
                line(format!(
                    "added practice {} ({}, {})",
                    p.practice.id, p.practice.name, p.practice.timezone
                ));
                line(super::render_practices::schedule_line(p));
            }
            Output::Practices(practices) => {
                if practices.is_empty() {
                    line("no practices yet: add one with `passerelle practices add ID --name NAME`".into());
                } else {
                    line(format!("{:<20} {:<16} name", "practice", "time zone"));
                }
                for p in practices {
                    line(format!(
                        "{:<20} {:<16} {}",
                        p.practice.id, p.practice.timezone, p.practice.name
                    ));
                    line(format!("  {}", super::render_practices::schedule_line(p)));
                }
            }
            Output::Schedule(p) => line(super::render_practices::schedule_line(p)),
            Output::Practice(p) => super::render_practices::practice(p, line),
            Output::Account(a) => super::render_practices::account(a, line),
            Output::AccountAdded(a) => {
                line(format!(
                    "added account {} of practice {} on {}",
                    a.account.id, a.account.practice_id, a.account.connector
                ));
                if !a.connector_installed {
                    line(format!(
                        "note: connector `{}` is not installed yet (passerelle plugins install FILE.wasm)",
                        a.account.connector
                    ));
                }
                if let Some(c) = &a.check {
                    line(check_line(c));
                }
            }
            Output::AccountUpdated(a) => {
                line(format!("updated account {}", a.account.id));
                if let Some(c) = &a.check {
                    line(check_line(c));
                }
            }
            Output::AccountRemoved(id) => line(format!("removed account {id} and its data")),
            Output::BackedUp(r) => {
                line(format!("wrote {} ({} bytes)", r.file.display(), r.bytes));
                line(totals_line(&r.totals));
                line("keep the data directory's secrets.key apart from it: a restore needs that key".into());
            }
            Output::Restored(r) => {
                line(format!("restored into {}", r.data_dir.display()));
                line(totals_line(&r.totals));
                line(format!(
                    "audit trail intact: {} entries, head {}; {} secrets open with the key",
                    r.audit_entries, r.audit_head, r.secrets
                ));
            }
            Output::Accounts(accounts) => {
                if accounts.is_empty() {
                    line("no accounts: add one with `passerelle accounts add`".into());
                }
                for a in accounts {
                    line(account_line(a));
                }
            }
            Output::AccountChecked(c) => line(check_line(c)),
            Output::SecretStored { account, name } => {
                line(format!("stored secret `{name}` of account {account}"))
            }
            Output::Paused(pauses) => {
                if pauses.is_empty() {
                    line("no account is paused".into());
                } else {
                    line(format!(
                        "{:<20} {:<12} paused since, by run, on version / why",
                        "account", "connector"
                    ));
                }
                for p in pauses {
                    line(format!(
                        "{:<20} {:<12} paused {} by run {} on {} {}",
                        p.account_id,
                        p.connector,
                        p.paused_at,
                        p.run_id,
                        p.connector,
                        printable(&p.version)
                    ));
                    line(match p.reason {
                        passerelle_model::run::PauseReason::Drift => {
                            format!("    drift: {}", printable(&p.drift.to_string()))
                        }
                        passerelle_model::run::PauseReason::Security => {
                            format!("    security event: {}", printable(&p.drift.found))
                        }
                    });
                }
            }
            Output::Quarantined(items) => {
                if items.is_empty() {
                    line("no item is quarantined".into());
                }
                for q in items {
                    line(format!(
                        "{:<20} {:<12} run {} (seen {}×, last {}): {} [{} bytes]",
                        q.account_id,
                        q.connector,
                        q.last_run_id,
                        q.times_seen,
                        q.last_seen,
                        printable(&q.drift.to_string()),
                        q.item_bytes
                    ));
                    if let Some(item) = &q.item {
                        line(format!("    {}", printable(item)));
                    }
                }
            }
            Output::Resumed { account, runs } => {
                line(format!(
                    "pause lifted; {account} re-driven from its last checkpoint:"
                ));
                out.push_str(&run_table(runs));
            }
            Output::Connectors {
                versions,
                rejections,
            } => {
                out.push_str(&versions_text(versions));
                if !rejections.is_empty() {
                    out.push_str("latest refused candidates (passerelle plugins rejections):\n");
                    out.push_str(&rejections_text(rejections));
                }
            }
            Output::Installed(files) => {
                for (file, r) in files {
                    match r {
                        Ok(i) => line(install_line(i)),
                        Err(e) => line(format!("{file}: refused: {}", printable(e))),
                    }
                }
            }
            Output::Validated(files) => {
                for (file, r) in files {
                    match r {
                        Ok(found) => line(format!("{file}: {found}")),
                        Err(e) => line(format!("{file}: {}", printable(e))),
                    }
                }
            }
            Output::Activated(a) => line(format!(
                "{} {} is active (was {}); runs already started finish on the version they started with",
                a.name,
                a.to,
                a.from.as_deref().unwrap_or("none")
            )),
            Output::CanaryStarted(c) => line(format!(
                "{} {} runs as a canary for {}; promote with `passerelle plugins promote {}`, stop with `passerelle plugins stop-canary {}`",
                c.name,
                c.version,
                c.practices.join(", "),
                c.name,
                c.name
            )),
            Output::CanaryStopped(name) => line(format!(
                "canary of {name} stopped: its practices run the active version"
            )),
            Output::Rejections(r) => out.push_str(&rejections_text(r)),
            Output::Runs(runs) | Output::Synced { runs, .. } => out.push_str(&run_table(runs)),
            Output::Daemons(daemons) => out.push_str(&daemon_table(daemons)),
            Output::TokenCreated(t) => out.push_str(&format!(
                "token `{}` created with scopes {}; its value, shown this once:\n{}\n",
                t.token.name,
                t.token.scopes.join(", "),
                t.secret
            )),
            Output::Tokens(tokens) => {
                if tokens.is_empty() {
                    out.push_str("no named token (the daemon's admin token is not listed)\n");
                }
                for t in tokens {
                    out.push_str(&format!(
                        "{:<20} {:<28} created {}{}\n",
                        t.name,
                        t.scopes.join(","),
                        t.created_at,
                        t.revoked_at
                            .as_deref()
                            .map(|r| format!(", revoked {r}"))
                            .unwrap_or_default()
                    ));
                }
            }
            Output::TokenRevoked(name) => out.push_str(&format!("token `{name}` revoked\n")),
            Output::Audit(entries) => {
                if entries.is_empty() {
                    out.push_str("the audit trail is empty\n");
                }
                for e in entries {
                    out.push_str(&format!(
                        "{:>6} {} {:<24} {:<24} {:<20} {}\n",
                        e.seq, e.at, e.actor, e.action, e.target, e.detail
                    ));
                }
            }
            Output::AuditVerified(r) => {
                for p in &r.problems {
                    out.push_str(&format!("broken: {p}\n"));
                }
                out.push_str(&format!(
                    "{} entries, head {} {}{}\n",
                    r.entries,
                    r.head_seq,
                    r.head_hash,
                    if r.problems.is_empty() { ", chain intact" } else { "" }
                ));
            }
            Output::KeyRotated(k) => out.push_str(&format!(
                "{} secret(s) sealed under key {} ({})\n",
                k.sealed, k.key_id, k.key
            )),
            Output::Appointments(page) => super::render_records::appointments(page, line),
            Output::Slots { account, page } => super::render_records::slots(account, page, line),
            Output::Changes(page) => super::render_records::changes(page, line),
            Output::SubscriptionAdded(s) => super::render_records::added(s, line),
            Output::Subscriptions(s) => super::render_records::subscriptions(s, line),
            Output::SubscriptionRemoved(id) => line(format!("removed subscription {id}")),
            Output::Exported(r) => super::render_records::exported(r, line),
            Output::Shadow(r) => super::render_plugins::shadow(r, line),
            Output::CassetteWritten { dir, cassette } => {
                line(format!(
                    "run {} ({}, {} {}, recorded {}): {} exchanges written to {}",
                    cassette.run_id,
                    cassette.reason,
                    cassette.connector,
                    cassette.version,
                    cassette.recorded_at,
                    cassette.cassette.exchanges.len(),
                    dir.display()
                ));
                line(format!(
                    "replay: passerelle connector test COMPONENT --cassette {}",
                    dir.display()
                ))
            }
            Output::SubscriptionReplayed(s) => line(format!(
                "subscription {} delivers again from after {} ({})",
                s.id,
                s.delivered_through,
                s.state.as_str()
            )),
            Output::Text(text) => line(text.trim_end_matches('\n').to_string()),
            Output::ConnectorTest {
                reports,
                many,
                summary,
            } => {
                let text = match (many, reports.first()) {
                    (false, Some(report)) => super::render_kit::text(report, *summary),
                    _ => super::render_kit::texts(reports, *summary),
                };
                line(text.trim_end_matches('\n').to_string())
            }
            #[cfg(feature = "dev")]
            Output::Demo(report) => {
                for (title, runs) in &report.phases {
                    line(format!(
                        "\n{title}\n{}{}",
                        run_table(runs),
                        platform_table(runs).trim_end_matches('\n')
                    ));
                }
                line(report.closing.trim_end_matches('\n').to_string());
            }
            Output::Nothing => {}
        }
        out
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends the output quietly.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What a database holds, in one line.
fn totals_line(t: &passerelle_store::backup::Totals) -> String {
    format!(
        "{} practices, {} accounts, {} appointments, {} slots, {} runs, {} components, {} audit entries",
        t.practices, t.accounts, t.appointments, t.slots, t.runs, t.components, t.audit_entries
    )
}

/// What checking an account found.
fn check_line(c: &AccountCheck) -> String {
    let by = c
        .connector_version
        .as_deref()
        .map(|v| format!(" (connector {v})"))
        .unwrap_or_default();
    match (&c.error_kind, &c.detail) {
        _ if c.ok => format!("check of {}: ok{by}", c.account_id),
        (Some(kind), Some(detail)) => {
            format!(
                "check of {}: {kind}{by}: {}",
                c.account_id,
                printable(detail)
            )
        }
        _ => format!("check of {}: failed{by}", c.account_id),
    }
}

/// One account (secret names, never values).
fn account_line(a: &Account) -> String {
    let settings: Vec<String> = a.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{:<20} practice={:<16} connector={:<10} settings=[{}] secrets=[{}]",
        a.id,
        a.practice_id,
        a.connector,
        settings.join(" "),
        a.secrets.join(" ")
    )
}

/// The runs as a table with a header: what `sync`, `runs` and the demo print.
/// Runs summed by connector (platform): how many, how many succeeded, what they
/// stored and how long they took.
pub fn platform_table(runs: &[Run]) -> String {
    let mut by: std::collections::BTreeMap<&str, [i64; 6]> = Default::default();
    for r in runs {
        let e = by.entry(r.connector.as_str()).or_default();
        e[0] += 1;
        e[1] += i64::from(r.status == passerelle_model::run::Status::Succeeded);
        e[2] += r.counts.appointments_added + r.counts.appointments_changed;
        e[3] += r.counts.slots_written;
        e[4] += r.counts.http_requests;
        e[5] += r.duration_ms.unwrap_or(0);
    }
    let mut out = format!(
        "  {:<10} {:>5} {:>10} {:>13} {:>7} {:>6} {:>8}\n",
        "platform", "runs", "succeeded", "appointments", "slots", "http", "ms"
    );
    for (connector, n) in by {
        out.push_str(&format!(
            "  {:<10} {:>5} {:>10} {:>13} {:>7} {:>6} {:>8}\n",
            connector, n[0], n[1], n[2], n[3], n[4], n[5]
        ));
    }
    out
}

/// The live daemons: id, where, since when, last heartbeat, runs held.
pub fn daemon_table(daemons: &[DaemonRow]) -> String {
    if daemons.is_empty() {
        return "no daemon is running on this database (start one with `passerelle serve`)\n"
            .into();
    }
    let mut out = format!(
        "  {:<28} {:<20} {:>8} {:<9} {:<24} {:<24} {:>7}\n",
        "daemon", "host", "pid", "version", "started", "heartbeat", "running"
    );
    for d in daemons {
        out.push_str(&format!(
            "  {:<28} {:<20} {:>8} {:<9} {:<24} {:<24} {:>7}\n",
            d.id, d.host, d.pid, d.version, d.started_at, d.heartbeat_at, d.running
        ));
    }
    out
}

pub fn run_table(runs: &[Run]) -> String {
    let row = |cells: [&str; 13]| {
        format!(
            "  {:<6} {:<10} {:<21} {:<16} {:<11} {:<9} {:>6} {:>8} {:>8} {:>10} {:>6} {:>5} {:>7}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7],
            cells[8], cells[9], cells[10], cells[11], cells[12]
        )
    };
    let mut out = row([
        "run",
        "status",
        "account",
        "connector",
        "mode",
        "trigger",
        "added",
        "changed",
        "deleted",
        "tombstoned",
        "slots",
        "http",
        "ms",
    ]);
    for r in runs {
        let c = &r.counts;
        let numbers = [
            c.appointments_added,
            c.appointments_changed,
            c.appointments_deleted,
            c.appointments_tombstoned,
            c.slots_written,
            c.http_requests,
            r.duration_ms.unwrap_or(0),
        ]
        .map(|n| n.to_string());
        let connector = format!("{} {}", r.connector, r.connector_version);
        let id = r.id.to_string();
        out.push_str(&row([
            &id,
            r.status.as_str(),
            &format!("{}/{}", r.practice_id, r.account_id),
            &connector,
            r.mode.as_str(),
            r.trigger.as_str(),
            &numbers[0],
            &numbers[1],
            &numbers[2],
            &numbers[3],
            &numbers[4],
            &numbers[5],
            &numbers[6],
        ]));
        if let (Some(kind), Some(detail)) = (&r.error_kind, &r.error_detail) {
            out.push_str(&format!("         {kind}: {}\n", printable(detail)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::cli::render::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain text é"), "plain text é");
        let shown = printable("internal(\"\u{1b}]0;pwned\u{7}\")");
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.contains("\\u{1b}"), "{shown}");
    }
}
