//! The `passerelle` command line. Arguments ([`args`]) become one request, run against
//! one [`admin::Admin`] — the service on this machine's database, or a daemon's admin API
//! with `--server` — and the result is printed by one renderer ([`render`]). Long
//! commands show [`progress`] on a terminal. `serve` starts the daemon; `demo` and `sim`
//! come with the `dev` feature.

pub mod admin;
pub mod args;
pub mod connector;
pub mod printable;
pub mod progress;
pub mod render;
pub mod render_records;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use self::admin::{Admin, Local};
pub use self::args::{
    AccountsCmd, AuditCmd, Cli, Command, ExportCmd, Global, LogFormat, PluginsCmd, PracticesCmd,
    SecretsCmd, SubscriptionsCmd, TokensCmd,
};
use self::progress::Progress;
use self::render::Output;
use crate::client::Client;
use passerelle_model::public::PublicInfo;
use passerelle_model::run::Mode;
use passerelle_service::app::Passerelle;
use passerelle_service::config::{default_data_dir, Config};
use passerelle_service::feed::ChangeQuery;
use passerelle_service::practices::{NewAccount, NewPractice, PracticeUpdate};
use passerelle_service::records::{AppointmentQuery, SlotQuery};
use passerelle_service::runs::{RunQuery, SyncRequest};
use passerelle_service::subscriptions::AddSubscription;
use passerelle_store::quarantine::QuarantineFilter;

/// Sets up logging to stderr. One-shot commands log warnings only (their output is the
/// point); the daemon and the simulator log what they do. `-v` adds a level each time.
pub fn init_logging(format: LogFormat, verbose: u8, long_running: bool) {
    let level = verbose + u8::from(long_running);
    let default = match level {
        0 => "warn",
        1 => "info,sqlx=warn",
        2 => "debug,sqlx=warn,wasmtime=info,cranelift=info",
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

impl Command {
    /// Whether the command keeps running (and so logs what it does at INFO).
    pub fn is_long_running(&self) -> bool {
        match self {
            Command::Serve { check_config } => !check_config,
            #[cfg(feature = "dev")]
            Command::Sim { .. } => true,
            _ => false,
        }
    }

    /// Commands that read or change this machine's files or database directly, and so
    /// cannot go through a daemon.
    fn local_only(&self) -> Option<&'static str> {
        Some(match self {
            Command::Plugins(PluginsCmd::Validate { .. }) => "plugins validate",
            Command::Sync {
                record: Some(_), ..
            } => "sync --record",
            Command::Serve { .. } => "serve",
            Command::Secrets(_) => "secrets",
            Command::Audit(_) => "audit",
            Command::Tokens(_) => "tokens",
            Command::Export(_) => "export",
            #[cfg(feature = "dev")]
            Command::Demo { .. } => "demo",
            #[cfg(feature = "dev")]
            Command::Sim { .. } => "sim",
            _ => return None,
        })
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let mut config = Config::load(cli.global.config.as_deref())?;
    if let Some(url) = &cli.global.database_url {
        config.database_url = Some(url.clone());
    }
    let json = cli.global.json;
    match cli.command {
        #[cfg(feature = "dev")]
        Command::Demo {
            plugins_dir,
            practices,
            seed,
            full,
            reset,
        } => {
            let report = passerelle_dev::demo::run(passerelle_dev::demo::DemoOptions {
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
            .await?;
            for (title, runs) in &report.phases {
                render::write_stdout(&format!(
                    "\n{title}\n{}{}",
                    render::run_table(runs),
                    render::platform_table(runs)
                ))?;
            }
            render::write_stdout(&report.closing)?;
            if report.failed > 0 {
                bail!("{} run(s) did not succeed (see above)", report.failed);
            }
            return Ok(());
        }
        #[cfg(feature = "dev")]
        Command::Sim {
            listen,
            practices,
            seed,
            appointments,
            advance_every,
            dentist_every,
            platforms,
            availability_days,
        } => {
            let platforms = platforms
                .iter()
                .map(|name| {
                    passerelle_sim::Platform::ALL
                        .into_iter()
                        .find(|p| p.as_str() == name.trim())
                        .with_context(|| {
                            format!("unknown platform `{name}` (doctolib, keldoc, maiia, ordoclic, mapharma)")
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let config = passerelle_sim::SimConfig {
                seed,
                practices,
                appointments_per_account: appointments,
                dentist_every,
                availability_days,
                platforms,
                ..passerelle_sim::SimConfig::default()
            };
            return passerelle_dev::sim::serve_simulator(config, listen, advance_every).await;
        }
        Command::Serve { check_config: true } => {
            return self::check_config(&config, cli.global.config.as_deref());
        }
        Command::Connector(command) => return connector::run(command, &config, json).await,
        _ => {}
    }
    let data_dir = cli
        .global
        .data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    if let Some(server) = &cli.global.server {
        if let Some(name) = cli.command.local_only() {
            bail!("`{name}` reads or changes files on the daemon's machine: run it there, without --server");
        }
        let token = match &cli.global.token {
            Some(t) => t.clone(),
            None => {
                let path = passerelle_daemon::token::token_path(&data_dir);
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
        let client = Client::new(server, &token)?;
        return finish(execute(&client, cli.command).await?, json);
    }
    if let Command::Serve { .. } = cli.command {
        let app = Passerelle::open(&data_dir, config).await?;
        return crate::serve::serve(app, crate::serve::ServeOptions::default()).await;
    }
    let app = Arc::new(Passerelle::open(&data_dir, config).await?);
    // What the command does is recorded in the audit trail as this machine's user's.
    let result = passerelle_service::principal::as_principal(
        passerelle_service::principal::local(),
        async {
            match local_command(&app, &cli.command).await {
                Some(r) => r,
                None => execute(&Local(app.clone()), cli.command).await,
            }
        },
    )
    .await;
    // A drift during a foreground sync: let its webhook alert go out.
    app.alerts.flush(std::time::Duration::from_secs(10)).await;
    app.store.close().await;
    finish(result?, json)
}

/// Prints the output; an error (non-zero exit) if the command did not fully succeed.
fn finish(output: Output, json: bool) -> Result<()> {
    output.print(json)?;
    match output.failure() {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}

/// Runs one command against `admin`: the same code locally and with `--server`.
pub async fn execute(admin: &impl Admin, command: Command) -> Result<Output> {
    Ok(match command {
        Command::Practices(PracticesCmd::Add {
            id,
            name,
            timezone,
            schedule,
        }) => Output::PracticeAdded(
            admin
                .create_practice(NewPractice {
                    id,
                    name,
                    timezone,
                    schedule,
                })
                .await?,
        ),
        Command::Practices(PracticesCmd::List) => Output::Practices(admin.practices().await?),
        Command::Practices(PracticesCmd::SetPublic {
            id,
            department,
            address,
            city,
            postcode,
            latitude,
            longitude,
            booking_url,
            kind,
            clear,
        }) => {
            let public = match (clear, department) {
                (true, _) | (false, None) => None,
                (false, Some(department)) => Some(PublicInfo {
                    department,
                    address,
                    city,
                    postcode,
                    latitude,
                    longitude,
                    booking_url,
                    kind,
                }),
            };
            let update = PracticeUpdate {
                public: Some(public),
                ..PracticeUpdate::default()
            };
            Output::Schedule(admin.update_practice(&id, update).await?)
        }
        Command::Practices(PracticesCmd::SetSchedule { id, cron, default }) => {
            let update = PracticeUpdate {
                schedule: Some(if default { None } else { cron }),
                ..PracticeUpdate::default()
            };
            Output::Schedule(admin.update_practice(&id, update).await?)
        }
        Command::Accounts(AccountsCmd::Add {
            id,
            practice,
            connector,
            label,
            settings,
        }) => Output::AccountAdded(
            admin
                .create_account(
                    &practice,
                    NewAccount {
                        id,
                        connector,
                        label,
                        settings: settings.into_iter().collect(),
                    },
                )
                .await?,
        ),
        Command::Accounts(AccountsCmd::List { practice }) => {
            Output::Accounts(admin.accounts(practice.as_deref()).await?)
        }
        Command::Accounts(AccountsCmd::SetSecret {
            account,
            name,
            from_env,
        }) => {
            let value = read_secret_value(&name, from_env.as_deref())?;
            admin.set_secret(&account, &name, &value).await?;
            Output::SecretStored { account, name }
        }
        Command::Accounts(AccountsCmd::Check { id }) => {
            Output::AccountChecked(admin.check_account(&id).await?)
        }
        Command::Accounts(AccountsCmd::Paused { connector }) => {
            Output::Paused(admin.paused(connector.as_deref()).await?)
        }
        Command::Accounts(AccountsCmd::Quarantined {
            connector,
            account,
            show_items,
            limit,
        }) => Output::Quarantined(
            admin
                .quarantined(QuarantineFilter {
                    connector,
                    account_id: account,
                    with_items: show_items,
                    limit: Some(limit),
                })
                .await?,
        ),
        Command::Accounts(AccountsCmd::Resume { id }) => {
            let run = admin.resume(&id, &Progress::new()).await?;
            Output::Resumed {
                account: id,
                runs: vec![run],
            }
        }
        Command::Plugins(PluginsCmd::List) => Output::Connectors {
            versions: admin.connectors().await?,
            rejections: admin.rejections(Some(5)).await?,
        },
        Command::Plugins(PluginsCmd::Install { files }) => {
            let progress = Progress::new();
            let mut answers = Vec::new();
            for file in files {
                progress.message(&format!("installing {}", file.display()));
                let answer = admin.install(&file).await.map_err(|e| format!("{e:#}"));
                answers.push((file.display().to_string(), answer));
            }
            Output::Installed(answers)
        }
        Command::Plugins(PluginsCmd::Approve { name, version }) => {
            Output::Activated(admin.approve(&name, &version).await?)
        }
        Command::Plugins(PluginsCmd::Rollback { name, version }) => {
            Output::Activated(admin.rollback(&name, version.as_deref()).await?)
        }
        Command::Plugins(PluginsCmd::Canary {
            name,
            version,
            practices,
        }) => Output::CanaryStarted(admin.start_canary(&name, &version, &practices).await?),
        Command::Plugins(PluginsCmd::Promote { name }) => {
            Output::Activated(admin.promote(&name).await?)
        }
        Command::Plugins(PluginsCmd::StopCanary { name }) => {
            admin.stop_canary(&name).await?;
            Output::CanaryStopped(name)
        }
        Command::Plugins(PluginsCmd::Rejections { limit }) => {
            Output::Rejections(admin.rejections(Some(limit)).await?)
        }
        Command::Sync {
            practice,
            account,
            full,
            record: _,
        } => {
            let runs = admin
                .sync(&practice, SyncRequest { account, full }, &Progress::new())
                .await?;
            Output::Synced { practice, runs }
        }
        Command::Runs {
            practice,
            account,
            status,
            connector,
            trigger,
            before,
            limit,
        } => Output::Runs(
            admin
                .runs(RunQuery {
                    practice,
                    account,
                    status,
                    connector,
                    trigger,
                    before,
                    since: None,
                    limit: Some(limit),
                })
                .await?,
        ),
        Command::Daemons => Output::Daemons(admin.daemons().await?),
        Command::Appointments {
            practice,
            account,
            all,
            show_patients,
            limit,
            after,
        } => {
            let practice = match (practice, &account) {
                (Some(p), _) => p,
                (None, Some(a)) => admin
                    .accounts(None)
                    .await?
                    .into_iter()
                    .find(|x| &x.id == a)
                    .map(|x| x.practice_id)
                    .with_context(|| format!("no account `{a}`"))?,
                (None, None) => bail!("name a practice or an account"),
            };
            let query = AppointmentQuery {
                account,
                all,
                patients: show_patients,
                after,
                limit: Some(limit),
                ..AppointmentQuery::default()
            };
            Output::Appointments(admin.appointments(&practice, query).await?)
        }
        Command::Slots {
            account,
            limit,
            after,
        } => Output::Slots {
            page: admin
                .slots(SlotQuery {
                    account: Some(account.clone()),
                    after,
                    limit: Some(limit),
                    ..SlotQuery::default()
                })
                .await?,
            account,
        },
        Command::Changes {
            after,
            practice,
            kind,
            limit,
            show_patients,
        } => Output::Changes(
            admin
                .changes(ChangeQuery {
                    after,
                    limit: Some(limit),
                    practice,
                    kind,
                    patients: show_patients,
                })
                .await?,
        ),
        Command::Subscriptions(SubscriptionsCmd::Add {
            url,
            practices,
            kinds,
            patients,
            allow_private,
            after,
        }) => Output::SubscriptionAdded(
            admin
                .add_subscription(AddSubscription {
                    url,
                    practices,
                    kinds,
                    patients,
                    allow_private,
                    after,
                })
                .await?,
        ),
        Command::Subscriptions(SubscriptionsCmd::List) => {
            Output::Subscriptions(admin.subscriptions().await?)
        }
        Command::Subscriptions(SubscriptionsCmd::Remove { id }) => {
            admin.remove_subscription(&id).await?;
            Output::SubscriptionRemoved(id)
        }
        Command::Subscriptions(SubscriptionsCmd::Replay { id, after }) => {
            Output::SubscriptionReplayed(admin.replay_subscription(&id, after).await?)
        }
        other => bail!(
            "`{}` cannot be run this way",
            other.local_only().unwrap_or("this command")
        ),
    })
}

/// The commands that only exist on this machine (they read its files or database).
async fn local_command(app: &Passerelle, command: &Command) -> Option<Result<Output>> {
    Some(match command {
        Command::Plugins(PluginsCmd::Validate { files }) => validate(app, files).await,
        Command::Export(ExportCmd::Vitemadose { out }) => app
            .export_vitemadose(out, chrono::Utc::now())
            .await
            .map(Output::Exported)
            .map_err(anyhow::Error::from),
        Command::Tokens(TokensCmd::Create { name, scopes }) => app
            .create_token(name, scopes)
            .await
            .map(Output::TokenCreated)
            .map_err(Into::into),
        Command::Tokens(TokensCmd::List) => {
            app.tokens().await.map(Output::Tokens).map_err(Into::into)
        }
        Command::Tokens(TokensCmd::Revoke { name }) => app
            .revoke_token(name)
            .await
            .map(|()| Output::TokenRevoked(name.clone()))
            .map_err(Into::into),
        Command::Audit(AuditCmd::List { limit }) => app
            .audit_entries(Some(*limit))
            .await
            .map(Output::Audit)
            .map_err(Into::into),
        Command::Audit(AuditCmd::Verify) => app
            .verify_audit()
            .await
            .map(Output::AuditVerified)
            .map_err(Into::into),
        Command::Secrets(SecretsCmd::RotateKey) => app
            .rotate_secrets_key()
            .await
            .map(Output::KeyRotated)
            .map_err(Into::into),
        Command::Sync {
            practice,
            account: Some(account),
            full,
            record: Some(dir),
        } => record(app, practice, account, *full, dir).await,
        _ => return None,
    })
}

/// `sync --record`: one account's run, recorded as a cassette.
async fn record(
    app: &Passerelle,
    practice: &str,
    account: &str,
    full: bool,
    dir: &Path,
) -> Result<Output> {
    let found = app.account(account).await?;
    if found.practice_id != practice {
        bail!("account `{account}` is not an account of practice `{practice}`");
    }
    let mode = if full { Mode::Full } else { Mode::Incremental };
    let (run, cassette) = passerelle_kit::record::record_sync(app, account, mode, dir).await?;
    eprintln!(
        "recorded the run's exchanges into {} (replay: passerelle connector test COMPONENT --cassette {})",
        cassette.display(),
        cassette.display()
    );
    Ok(Output::Synced {
        practice: practice.to_string(),
        runs: vec![run],
    })
}

async fn validate(app: &Passerelle, files: &[std::path::PathBuf]) -> Result<Output> {
    let mut found = Vec::new();
    for file in files {
        let candidate = passerelle_service::plugins::Candidate::from_file(file, "validate")?;
        let sha = passerelle_model::sha256_hex(&candidate.bytes);
        let answer = match app.examine(&candidate, &sha).await? {
            Ok(examined) => Ok(examined_line(&examined, &sha)),
            Err(r) => Err(format!("invalid ({}): {}", r.kind, r.reason)),
        };
        found.push((file.display().to_string(), answer));
    }
    Ok(Output::Validated(found))
}

fn examined_line(found: &passerelle_service::plugins::Examined, sha: &str) -> String {
    use passerelle_service::plugins::Examined;
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

/// `serve --check-config`: the effective configuration (secrets hidden), or the error.
fn check_config(config: &Config, path: Option<&Path>) -> Result<()> {
    let mut shown = config.clone();
    if shown.daemon.token.is_some() {
        shown.daemon.token = Some("(set)".into());
    }
    if let Some(url) = &shown.database_url {
        shown.database_url = Some(passerelle_store::redact_url(url));
    }
    if let Some(url) = &shown.alerts.webhook_url {
        // Webhook URLs often carry their credential in the path.
        shown.alerts.webhook_url = Some(passerelle_service::alerts::redacted_webhook(url));
    }
    let text = toml::to_string_pretty(&shown).context("printing the configuration")?;
    render::write_stdout(&format!(
        "{text}\nconfiguration OK ({})\n",
        match path {
            Some(p) => format!("{} and the environment", p.display()),
            None => "defaults and the environment".into(),
        }
    ))
}

/// A secret's value from the named environment variable or standard input; never
/// from the command line (it would land in shell history and `ps`).
fn read_secret_value(name: &str, from_env: Option<&str>) -> Result<String> {
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
