//! The `passerelle` command line: argument parsing (clap), logging set-up, and one small
//! function per command that calls into the library and prints the result.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::connectors::{ConnectorView, InstallAnswer};
use crate::app::Passerelle;
use crate::config::{default_data_dir, Config};
use crate::plugins::{Activation, Outcome};
use crate::store::connectors::{Canary, Rejection};
use crate::store::pauses::Pause;
use crate::store::quarantine::{QuarantineFilter, QuarantinedItem};
use crate::store::runs::{Mode, Run, RunFilter, Status, Trigger};
use crate::sync::SyncOptions;

/// passerelle: sync medical practices' appointments from booking platforms, through
/// sandboxed WebAssembly connectors.
#[derive(Parser, Debug)]
#[command(name = "passerelle", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Data directory: database, installed connectors, compile cache.
    /// Default: $XDG_DATA_HOME/passerelle.
    #[arg(long, global = true, env = "PASSERELLE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (sqlite://PATH or postgres://USER@HOST/DB).
    /// Default: SQLite in the data directory.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, global = true, env = "PASSERELLE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Send the command to a running daemon's admin API (e.g. http://127.0.0.1:8787)
    /// instead of opening the database.
    #[arg(long, global = true, env = "PASSERELLE_SERVER")]
    pub server: Option<String>,
    /// The daemon's admin token with --server. Default: the admin-token file in the
    /// data directory.
    #[arg(long, global = true, env = "PASSERELLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// More logs (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Medical practices (every sync is scoped to one).
    #[command(subcommand)]
    Practices(PracticesCmd),
    /// A practice's accounts on booking platforms.
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Installed connectors (wasm components).
    #[command(subcommand)]
    Plugins(PluginsCmd),
    /// Sync a practice now (all its accounts, or one) and print one line per run.
    Sync {
        /// Practice id.
        practice: String,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Re-read the whole window and tombstone what the platform no longer returns.
        #[arg(long)]
        full: bool,
    },
    /// A practice's (or one account's) stored appointments. Patients are shown as
    /// initials unless --show-patients is given.
    Appointments {
        #[arg(long, required_unless_present = "account")]
        practice: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// Include deleted and tombstoned appointments.
        #[arg(long)]
        all: bool,
        /// Print patients' names, birth dates, phones and e-mails.
        #[arg(long)]
        show_patients: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// An account's stored public availability (bookable slots).
    Slots {
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run the demo: the simulator in-process, the bundled connectors, a few practices;
    /// a full sync, simulated changes, an incremental sync, and a summary. Run it again
    /// for the next changes. Default data directory: $XDG_DATA_HOME/passerelle-demo.
    Demo {
        /// Where the built connectors are (doctolib.wasm…).
        #[arg(long, env = "PASSERELLE_PLUGINS_DIR", default_value = "target/plugins")]
        plugins_dir: PathBuf,
        /// Practices to simulate (every other one also has a dentist profile).
        #[arg(long, default_value_t = 3)]
        practices: usize,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// On a later demo, sync fully (tombstoning deleted appointments).
        #[arg(long)]
        full: bool,
        /// Forget earlier demos: delete the demo's data directory first.
        #[arg(long)]
        reset: bool,
    },
    /// Serve the platform simulator standalone and print how to point passerelle at it.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8900")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 3)]
        practices: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Appointments generated per account.
        #[arg(long, default_value_t = 120)]
        appointments: usize,
        /// Move the simulated world one step on every N seconds (0: only on
        /// `POST /_sim/advance`).
        #[arg(long, default_value_t = 0)]
        advance_every: u64,
    },
    /// Run the daemon: syncs every practice on its schedule, runs manual syncs, answers
    /// the admin API (default http://127.0.0.1:8787, bearer token in
    /// <data dir>/admin-token). Stops gracefully on SIGTERM or SIGINT.
    Serve {
        /// Validate the configuration (file and PASSERELLE_* environment), print the
        /// effective settings, and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// The sync log, newest first.
    Runs {
        #[arg(long)]
        practice: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// succeeded, failed, drift, skipped, cancelled or running.
        #[arg(long)]
        status: Option<Status>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PracticesCmd {
    /// Add a practice.
    Add {
        /// Stable id (a-z A-Z 0-9 - _ .), used in every other command.
        id: String,
        #[arg(long)]
        name: String,
        /// IANA time zone of the practice.
        #[arg(long, default_value = "Europe/Paris")]
        timezone: String,
        /// Its own sync schedule: a five-field cron expression in its time zone
        /// (default: daily at 03:00, spread over an hour by practice).
        #[arg(long)]
        schedule: Option<String>,
    },
    /// List practices, with their schedules and next scheduled sync.
    List,
    /// Set a practice's sync schedule (cron in its time zone), or reset it to the default.
    SetSchedule {
        id: String,
        /// Five fields: minute hour day-of-month month day-of-week, e.g. "30 2 * * 1-5".
        #[arg(required_unless_present = "default")]
        cron: Option<String>,
        /// Back to the default schedule.
        #[arg(long, conflicts_with = "cron")]
        default: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountsCmd {
    /// Add an account of a practice on a platform.
    Add {
        /// Stable account id.
        id: String,
        #[arg(long)]
        practice: String,
        /// Connector name (see `passerelle plugins list`).
        #[arg(long)]
        connector: String,
        #[arg(long)]
        label: Option<String>,
        /// A non-secret setting, KEY=VALUE (repeatable).
        #[arg(long = "setting", value_parser = parse_key_value)]
        settings: Vec<(String, String)>,
    },
    /// List accounts (secret names shown, never values).
    List {
        #[arg(long)]
        practice: Option<String>,
    },
    /// Accounts paused by schema drift, with the drift report.
    Paused {
        #[arg(long)]
        connector: Option<String>,
    },
    /// Items set aside under the `quarantine` drift policy (the items themselves, which
    /// may hold patient data, only with --show-items).
    Quarantined {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        show_items: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Lift an account's drift pause and sync it from its last checkpoint (trigger
    /// `redrive`). With --server the daemon queues the run; without, it runs here.
    Resume { id: String },
    /// Set a secret of an account. The value is read from standard input (or from the
    /// environment variable named by --from-env), never from the command line.
    SetSecret {
        account: String,
        name: String,
        #[arg(long)]
        from_env: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginsCmd {
    /// List installed connector versions (`*` active, `?` waiting for approval) and the
    /// latest refused candidates.
    List,
    /// Install connector components (.wasm): compile, check the contract and describe(),
    /// keep a copy, and activate when newer than the active version. A version asking for
    /// more hosts or secrets than the active one waits for `plugins approve`.
    Install {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check components without installing them: the same checks as `install` (contract,
    /// world, describe(), manifest, version against what is installed here), and what
    /// installing would do.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Activate a version that waits for approval (it asks for more than the active one).
    Approve { name: String, version: String },
    /// Activate an earlier kept version: the one named, or the one active before.
    Rollback {
        name: String,
        version: Option<String>,
    },
    /// Run a kept version for some practices only (a canary), before promoting it.
    Canary {
        name: String,
        version: String,
        /// A practice whose accounts run this version (repeatable).
        #[arg(long = "practice", required = true)]
        practices: Vec<String>,
    },
    /// Make the canary's version active for every practice.
    Promote { name: String },
    /// Stop the canary: its practices go back to the active version.
    StopCanary { name: String },
    /// Refused candidates, newest first, with the reason.
    Rejections {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

impl std::str::FromStr for Status {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Status::parse(s)
    }
}

/// Sets up logging to stderr.
pub fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "info,sqlx=warn",
        1 => "debug,sqlx=warn,wasmtime=info,cranelift=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let mut config = Config::load(cli.global.config.as_deref())?;
    if let Some(url) = &cli.global.database_url {
        config.database_url = Some(url.clone());
    }
    match cli.command {
        Command::Demo {
            plugins_dir,
            practices,
            seed,
            full,
            reset,
        } => {
            return crate::demo::run(crate::demo::DemoOptions {
                data_dir: cli
                    .global
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| default_data_dir().with_file_name("passerelle-demo")),
                database_url: cli.global.database_url.clone(),
                plugins_dir,
                practices,
                seed,
                full,
                reset,
            })
            .await;
        }
        Command::Sim {
            listen,
            practices,
            seed,
            appointments,
            advance_every,
        } => {
            let config = passerelle_sim::SimConfig {
                seed,
                practices,
                appointments_per_account: appointments,
                ..passerelle_sim::SimConfig::default()
            };
            return serve_simulator(config, listen, advance_every).await;
        }
        Command::Serve { check_config: true } => {
            return check_config(&config, cli.global.config.as_deref());
        }
        _ => {}
    }
    let data_dir = cli
        .global
        .data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    if let Some(server) = &cli.global.server {
        let token = match &cli.global.token {
            Some(t) => t.clone(),
            None => {
                let path = crate::daemon::token::token_path(&data_dir);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .with_context(|| {
                        format!(
                            "no --token given and {} cannot be read (PASSERELLE_TOKEN works too)",
                            path.display()
                        )
                    })?
            }
        };
        let client = crate::remote::Client::new(server, &token)?;
        return crate::remote::dispatch(&client, cli.command).await;
    }
    let app = Passerelle::open(&data_dir, config).await?;
    if let Command::Serve { .. } = cli.command {
        return crate::daemon::serve(app, crate::daemon::ServeOptions::default()).await;
    }
    let result = dispatch(&app, cli.command).await;
    // A drift during a foreground sync: let its webhook alert go out.
    app.alerts.flush(std::time::Duration::from_secs(10)).await;
    app.store.close().await;
    result
}

async fn dispatch(app: &Passerelle, command: Command) -> Result<()> {
    match command {
        Command::Practices(PracticesCmd::Add {
            id,
            name,
            timezone,
            schedule,
        }) => {
            if let Some(cron) = &schedule {
                // Refuse a bad schedule before creating anything.
                crate::schedule::Schedule::new(
                    cron,
                    &timezone,
                    crate::schedule::DEFAULT_SPREAD,
                    &id,
                )?;
            }
            let mut p = app.store.add_practice(&id, &name, &timezone).await?;
            if schedule.is_some() {
                p = app
                    .store
                    .set_practice_schedule(&id, schedule.as_deref())
                    .await?;
            }
            println!("added practice {} ({}, {})", p.id, p.name, p.timezone);
            println!("{}", schedule_line(&p, &app.config.schedule)?);
        }
        Command::Practices(PracticesCmd::SetSchedule { id, cron, default }) => {
            let cron = if default { None } else { cron };
            let p = app
                .store
                .set_practice_schedule(&id, cron.as_deref())
                .await?;
            println!("{}", schedule_line(&p, &app.config.schedule)?);
        }
        Command::Practices(PracticesCmd::List) => {
            let practices = app.store.list_practices().await?;
            if practices.is_empty() {
                println!(
                    "no practices yet: add one with `passerelle practices add ID --name NAME`"
                );
            }
            for p in practices {
                println!("{:<20} {:<16} {}", p.id, p.timezone, p.name);
                println!("  {}", schedule_line(&p, &app.config.schedule)?);
            }
        }
        Command::Accounts(AccountsCmd::Add {
            id,
            practice,
            connector,
            label,
            settings,
        }) => {
            let settings: BTreeMap<String, String> = settings.into_iter().collect();
            let a = app
                .store
                .add_account(&id, &practice, &connector, label.as_deref(), &settings)
                .await?;
            println!(
                "added account {} of practice {} on {}",
                a.id, a.practice_id, a.connector
            );
            if app.store.active_connector(&connector).await?.is_none() {
                println!("note: connector `{connector}` is not installed yet (passerelle plugins install FILE.wasm)");
            }
        }
        Command::Accounts(AccountsCmd::List { practice }) => {
            for a in app.store.list_accounts(practice.as_deref()).await? {
                println!("{}", account_line(&a));
            }
        }
        Command::Accounts(AccountsCmd::SetSecret {
            account,
            name,
            from_env,
        }) => {
            let value = read_secret_value(&name, from_env.as_deref())?;
            app.store.set_secret(&account, &name, &value).await?;
            println!("stored secret `{name}` of account {account}");
        }
        Command::Plugins(PluginsCmd::List) => {
            let versions = app.store.connector_versions(None).await?;
            let views = ConnectorView::list(versions, &app.store.canaries().await?);
            print_versions(&views, &app.store.rejections(5).await?);
        }
        Command::Plugins(PluginsCmd::Canary {
            name,
            version,
            practices,
        }) => {
            let c = app.start_canary(&name, &version, &practices).await?;
            println!("{}", canary_line(&c));
        }
        Command::Plugins(PluginsCmd::Promote { name }) => {
            println!("{}", activation_line(&app.promote(&name).await?));
        }
        Command::Plugins(PluginsCmd::StopCanary { name }) => {
            app.stop_canary(&name).await?;
            println!("canary of {name} stopped: its practices run the active version");
        }
        Command::Plugins(PluginsCmd::Install { files }) => {
            let mut failed = 0;
            for file in files {
                match app.install_plugin(&file).await {
                    Ok(i) => println!("{}", install_line(&i.into())),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {e:#}");
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} component(s) rejected");
            }
            println!("note: a running daemon sees the new active version at its next run and re-drives paused accounts within a minute; use --server to tell it at once");
        }
        Command::Plugins(PluginsCmd::Validate { files }) => {
            let mut failed = 0;
            for file in files {
                let candidate = crate::plugins::Candidate::from_file(&file, "validate")?;
                let sha = crate::runtime::sha256_hex(&candidate.bytes);
                match app.examine(&candidate, &sha).await? {
                    Ok(found) => println!("{}: {}", file.display(), examined_line(&found, &sha)),
                    Err(r) => {
                        failed += 1;
                        eprintln!("{}: invalid ({}): {}", file.display(), r.kind, r.reason);
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} component(s) would be rejected");
            }
        }
        Command::Plugins(PluginsCmd::Approve { name, version }) => {
            println!("{}", activation_line(&app.approve(&name, &version).await?));
        }
        Command::Plugins(PluginsCmd::Rollback { name, version }) => {
            println!(
                "{}",
                activation_line(&app.rollback(&name, version.as_deref()).await?)
            );
        }
        Command::Plugins(PluginsCmd::Rejections { limit }) => {
            print_rejections(&app.store.rejections(limit).await?);
        }
        Command::Accounts(AccountsCmd::Paused { connector }) => {
            print_pauses(&app.store.pauses(connector.as_deref()).await?);
        }
        Command::Accounts(AccountsCmd::Quarantined {
            connector,
            account,
            show_items,
            limit,
        }) => {
            let items = app
                .store
                .quarantined(&QuarantineFilter {
                    connector,
                    account_id: account,
                    with_items: show_items,
                    limit: Some(limit),
                })
                .await?;
            print_quarantined(&items);
        }
        Command::Accounts(AccountsCmd::Resume { id }) => {
            let account = app
                .store
                .account(&id)
                .await?
                .with_context(|| format!("no account `{id}`"))?;
            if !app.store.resume_account(&id).await? {
                bail!("account `{id}` is not paused");
            }
            println!("pause lifted; syncing {id} from its last checkpoint");
            let run = app
                .sync_account(
                    &account,
                    SyncOptions {
                        trigger: Trigger::Redrive,
                        mode: Mode::Incremental,
                    },
                )
                .await?;
            report_sync(&[run], &account.practice_id)?;
        }
        Command::Sync {
            practice,
            account,
            full,
        } => {
            let options = SyncOptions {
                trigger: Trigger::Manual,
                mode: if full { Mode::Full } else { Mode::Incremental },
            };
            let runs = app
                .sync_practice(&practice, account.as_deref(), options)
                .await?;
            report_sync(&runs, &practice)?;
        }
        Command::Demo { .. } | Command::Sim { .. } | Command::Serve { .. } => {
            unreachable!("handled before dispatch")
        }
        Command::Appointments {
            practice,
            account,
            all,
            show_patients,
            limit,
        } => {
            let accounts = match &account {
                Some(a) => vec![app.store.account(a).await?.with_context(|| {
                    format!("no account `{a}` (see `passerelle accounts list`)")
                })?],
                None => {
                    let p = practice.as_deref().expect("clap requires one");
                    if app.store.practice(p).await?.is_none() {
                        bail!("no practice `{p}` (see `passerelle practices list`)");
                    }
                    app.store.list_accounts(Some(p)).await?
                }
            };
            let mut shown = 0;
            let mut total = 0;
            for a in &accounts {
                let mut items = app.store.appointments(&a.id).await?;
                items.retain(|s| all || s.deleted_reason.is_none());
                items.sort_by_key(|s| s.record.starts_at_ms);
                total += items.len();
                for s in items.iter().take(limit.saturating_sub(shown)) {
                    shown += 1;
                    println!("{}", appointment_line(s, show_patients));
                }
            }
            if total > shown {
                println!("… {} more (--limit)", total - shown);
            }
            if total == 0 {
                println!("no appointments stored yet: run `passerelle sync PRACTICE`");
            }
        }
        Command::Slots { account, limit } => {
            if app.store.account(&account).await?.is_none() {
                bail!("no account `{account}` (see `passerelle accounts list`)");
            }
            let slots = app.store.slots(&account).await?;
            for s in slots.iter().take(limit) {
                println!(
                    "{:<26} {:<26} {:<24} {}",
                    s.starts_at,
                    s.practitioner.as_deref().unwrap_or("-"),
                    s.visit_motive.as_deref().unwrap_or("-"),
                    s.place.as_deref().unwrap_or("-")
                );
            }
            if slots.len() > limit {
                println!("… {} more (--limit)", slots.len() - limit);
            }
            if slots.is_empty() {
                println!("no slots stored for {account}");
            }
        }
        Command::Runs {
            practice,
            account,
            status,
            limit,
            json,
        } => {
            let runs = app
                .store
                .list_runs(&RunFilter {
                    since: None,
                    practice_id: practice,
                    account_id: account,
                    status,
                    limit: Some(limit),
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", run_table(&runs));
            }
        }
    }
    Ok(())
}

/// `serve --check-config`: the effective configuration (secrets hidden), or the error.
fn check_config(config: &Config, path: Option<&std::path::Path>) -> Result<()> {
    let mut shown = config.clone();
    if shown.daemon.token.is_some() {
        shown.daemon.token = Some("(set)".into());
    }
    if let Some(url) = &shown.database_url {
        shown.database_url = Some(crate::store::redact_url(url));
    }
    if let Some(url) = &shown.alerts.webhook_url {
        // Webhook URLs often carry their credential in the path.
        shown.alerts.webhook_url = Some(crate::alerts::redacted_webhook(url));
    }
    let text = toml::to_string_pretty(&shown).context("printing the configuration")?;
    println!("{text}");
    println!(
        "configuration OK ({})",
        match path {
            Some(p) => format!("{} and the environment", p.display()),
            None => "defaults and the environment".into(),
        }
    );
    Ok(())
}

/// A practice's schedule and its next scheduled sync, in its time zone.
fn schedule_line(
    p: &crate::store::practices::Practice,
    config: &crate::config::ScheduleConfig,
) -> Result<String> {
    p.schedule(config)?;
    Ok(
        crate::api::practices::PracticeView::new(p.clone(), config, chrono::Utc::now(), None)
            .schedule_line(),
    )
}

/// One stored appointment; the patient as initials unless `show_patients`.
fn appointment_line(s: &crate::store::records::StoredAppointment, show_patients: bool) -> String {
    let r = &s.record;
    let patient = match &r.patient {
        None => "-".to_string(),
        Some(p) if show_patients => format!(
            "{} {} ({}) {} {}",
            p.first_name,
            p.last_name,
            p.birth_date.as_deref().unwrap_or("?"),
            p.phone.as_deref().unwrap_or("-"),
            p.email.as_deref().unwrap_or("-")
        ),
        Some(p) => format!(
            "{}. {}.",
            p.first_name.chars().next().unwrap_or('?'),
            p.last_name.chars().next().unwrap_or('?')
        ),
    };
    format!(
        "{:<16} {:<14} {:<26} {:<10} {:<24} {:<30} {}{}",
        s.account_id,
        r.external_id,
        r.starts_at,
        r.status,
        r.practitioner.as_deref().unwrap_or("-"),
        r.visit_motive.as_deref().unwrap_or("-"),
        patient,
        match &s.deleted_reason {
            Some(why) => format!("  [{why}]"),
            None => String::new(),
        }
    )
}

/// Serves the simulator until interrupted.
async fn serve_simulator(
    config: passerelle_sim::SimConfig,
    listen: std::net::SocketAddr,
    advance_every: u64,
) -> Result<()> {
    let sim = passerelle_sim::Simulator::new(config);
    let running = sim.serve(listen).await?;
    let base = &running.base_url;
    println!(
        "simulator listening at {base}  (platforms: {})",
        passerelle_sim::PLATFORMS.join(", ")
    );
    println!("\npoint passerelle at it with this in its config file:\n");
    println!("[http.overrides]");
    for (_, origin) in crate::demo::SIMULATED_ORIGINS {
        println!("\"{origin}\" = \"{base}\"");
    }
    println!("\nsimulated practices (accounts: connector doctolib, settings centre and profile-id, secret api-token):");
    for p in &sim.world().practices {
        println!("  {}  {}", p.id, p.name);
        for a in &p.accounts {
            println!(
                "    {:<16} centre={} profile-id={} api-token={}",
                a.id, a.centre, a.profile_id, a.token
            );
        }
    }
    println!(
        "\ncontrol: GET {base}/_sim/practices, PUT {base}/_sim/faults/doctolib, POST {base}/_sim/advance (see docs/simulator.md)"
    );
    if advance_every > 0 {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(advance_every));
            tick.tick().await;
            loop {
                tick.tick().await;
                let c = sim.advance();
                tracing::info!(
                    step = c.step,
                    added = c.added.len(),
                    rescheduled = c.rescheduled.len(),
                    cancelled = c.cancelled.len(),
                    deleted = c.deleted.len(),
                    "simulated world advanced"
                );
            }
        });
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(running);
    Ok(())
}

/// One line per account (secret names, never values).
pub(crate) fn account_line(a: &crate::store::practices::Account) -> String {
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

/// Installed versions, one line each (`*` active, `?` waiting for approval, with what
/// it asks for), then the latest refused candidates.
pub(crate) fn print_versions(versions: &[ConnectorView], rejections: &[Rejection]) {
    if versions.is_empty() {
        println!("no connectors installed: passerelle plugins install FILE.wasm");
    }
    for v in versions {
        let mark = if v.active {
            "*"
        } else if v.pending_approval.is_some() {
            "?"
        } else {
            " "
        };
        println!(
            "{mark} {:<12} {:<10} sha256:{}  installed {}",
            v.name,
            v.version,
            &v.sha256[..v.sha256.len().min(16)],
            v.installed_at
        );
        if let Some(p) = &v.canary {
            println!(
                "    canary for {}  (passerelle plugins promote {} | stop-canary {})",
                p.join(", "),
                v.name,
                v.name
            );
        }
        if let Some(e) = &v.pending_approval {
            println!(
                "    waits for approval: {e}  (passerelle plugins approve {} {})",
                v.name, v.version
            );
        }
    }
    if !rejections.is_empty() {
        println!("latest refused candidates (passerelle plugins rejections):");
        print_rejections(rejections);
    }
}

pub(crate) fn print_rejections(rejections: &[Rejection]) {
    if rejections.is_empty() {
        println!("no refused candidates");
    }
    for r in rejections {
        println!(
            "  {} {} [{}] {}: {}",
            r.at,
            r.source,
            r.kind,
            &r.sha256[..r.sha256.len().min(12)],
            r.reason
        );
    }
}

/// What an installation did, in one line.
pub(crate) fn install_line(i: &InstallAnswer) -> String {
    let what = match i.outcome {
        Outcome::Activated => format!(
            "installed and activated{}",
            i.previous
                .as_deref()
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default()
        ),
        Outcome::AlreadyInstalled => "already installed".into(),
        Outcome::PendingApproval => format!(
            "installed, NOT activated: it asks for more than the active {}: {}; approve with `passerelle plugins approve {} {}`",
            i.previous.as_deref().unwrap_or("version"),
            i.escalation.clone().unwrap_or_default(),
            i.name,
            i.version
        ),
    };
    format!(
        "{} {} (sha256:{}): {what}",
        i.name,
        i.version,
        &i.sha256[..i.sha256.len().min(16)]
    )
}

fn examined_line(found: &crate::plugins::Examined, sha: &str) -> String {
    use crate::plugins::Examined;
    match found {
        Examined::Installed(i) => format!(
            "{} {} (sha256:{}) is installed already",
            i.manifest.name,
            i.manifest.version,
            &sha[..16]
        ),
        Examined::New {
            manifest,
            previous,
            escalation,
            ..
        } => format!(
            "{} {} (sha256:{}) is valid; installing it would {}",
            manifest.name,
            manifest.version,
            &sha[..16],
            match (escalation, previous) {
                (Some(e), _) => format!("wait for approval ({e})"),
                (None, Some(p)) => format!("activate it in place of {p}"),
                (None, None) => "activate it (the first version of this connector)".into(),
            }
        ),
    }
}

pub(crate) fn canary_line(c: &Canary) -> String {
    format!(
        "{} {} runs as a canary for {}; promote with `passerelle plugins promote {}`, stop with `passerelle plugins stop-canary {}`",
        c.name,
        c.version,
        c.practices.join(", "),
        c.name,
        c.name
    )
}

pub(crate) fn activation_line(a: &Activation) -> String {
    format!(
        "{} {} is active (was {}); runs already started finish on the version they started with",
        a.name,
        a.to,
        a.from.as_deref().unwrap_or("none")
    )
}

pub(crate) fn print_quarantined(items: &[QuarantinedItem]) {
    if items.is_empty() {
        println!("no item is quarantined");
    }
    for q in items {
        println!(
            "{:<20} {:<12} run {} (seen {}×, last {}): {} [{} bytes]",
            q.account_id,
            q.connector,
            q.last_run_id,
            q.times_seen,
            q.last_seen,
            q.drift,
            q.item_bytes
        );
        if let Some(item) = &q.item {
            println!("    {item}");
        }
    }
}

pub(crate) fn print_pauses(pauses: &[Pause]) {
    if pauses.is_empty() {
        println!("no account is paused");
    }
    for p in pauses {
        println!(
            "{:<20} {:<12} paused {} by run {} on {} {}",
            p.account_id, p.connector, p.paused_at, p.run_id, p.connector, p.version
        );
        println!("    {}", p.drift);
    }
}

/// A secret's value from the named environment variable or standard input; never
/// from the command line (it would land in shell history and `ps`).
pub(crate) fn read_secret_value(name: &str, from_env: Option<&str>) -> Result<String> {
    let value = match from_env {
        Some(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("type the value of secret `{name}`, then Enter:");
            }
            let mut v = String::new();
            std::io::stdin().read_to_string(&mut v)?;
            v.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if value.is_empty() {
        bail!("empty secret value: nothing stored");
    }
    Ok(value)
}

/// Prints a sync's runs; an error if any did not succeed.
pub(crate) fn report_sync(runs: &[Run], practice: &str) -> Result<()> {
    let failed = runs
        .iter()
        .filter(|r| r.status != Status::Succeeded)
        .count();
    print!("{}", run_table(runs));
    if failed > 0 {
        bail!(
            "{failed} of {} run(s) did not succeed (details: passerelle runs --practice {practice})",
            runs.len()
        );
    }
    Ok(())
}

/// The runs as a table with a header: what `sync`, `runs` and the demo print.
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
            out.push_str(&format!("         {kind}: {detail}\n"));
        }
    }
    out
}
