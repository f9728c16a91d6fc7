//! One dispatch for every resolved [`Invocation`]: the standalone commands, the daemon,
//! and the commands against the service — [`execute`], the same code locally and with
//! `--server` through [`Admin`], plus the few that only exist on this machine. Every
//! branch returns an [`Output`] for the one renderer.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::admin::{Admin, Local};
use super::args::{
    AccountsCmd, AuditCmd, Command, ExportCmd, PluginsCmd, PracticesCmd, RunsCmd, SecretsCmd,
    SubscriptionsCmd, TokensCmd,
};
use super::progress::Progress;
use super::render::Output;
use super::resolve::Invocation;
use passerelle_model::public::{ListingPatch, PublicPatch};
use passerelle_model::quarantine::QuarantineFilter;
use passerelle_model::run::Mode;
use passerelle_service::accounts::{AccountUpdate, NewAccount, SecretValues};
use passerelle_service::config::Config;
use passerelle_service::feed::ChangeQuery;
use passerelle_service::practices::{NewPractice, PracticeUpdate};
use passerelle_service::records::{AppointmentQuery, SlotQuery};
use passerelle_service::runs::{RunQuery, SyncRequest};
use passerelle_service::subscriptions::AddSubscription;
use passerelle_service::Passerelle;

/// A merge patch's field from a flag and `--unset`: a value given replaces, an unset
/// field is removed (null), the rest is kept (absent).
fn patched<T>(value: Option<T>, removed: bool) -> Option<Option<T>> {
    match value {
        Some(v) => Some(Some(v)),
        None => removed.then_some(None),
    }
}

/// Runs a resolved invocation.
pub async fn dispatch(invocation: Invocation) -> Result<Output> {
    match invocation {
        Invocation::Standalone {
            command,
            config,
            config_path,
            data_dir,
        } => standalone(command, &config, config_path.as_deref(), data_dir).await,
        Invocation::Serve { data_dir, config } => {
            // Heard from the first moment: a stop asked while the daemon opens its
            // database or starts ends it gracefully once it is up, instead of killing it.
            let stop = crate::serve::StopSignals::install()?;
            let app = Passerelle::open(&data_dir, config).await?;
            crate::serve::serve(app, crate::serve::ServeOptions::default(), stop).await?;
            Ok(Output::Nothing)
        }
        Invocation::Remote { client, command } => execute(&client, command).await,
        Invocation::Local {
            data_dir,
            config,
            command,
            here_only,
        } => {
            let app = Arc::new(Passerelle::open(&data_dir, config).await?);
            app.set_replayer(Arc::new(passerelle_kit::shadow::BenchReplayer));
            // What the command does is recorded in the audit trail as this machine's
            // user's.
            let result = passerelle_service::principal::as_principal(
                passerelle_service::principal::local(),
                async {
                    if here_only {
                        here(&app, command).await
                    } else {
                        execute(&Local(app.clone()), command).await
                    }
                },
            )
            .await;
            // A drift during a foreground sync: let its webhook alert go out.
            app.alerts.flush(std::time::Duration::from_secs(10)).await;
            app.store.close().await;
            result
        }
    }
}

/// The commands that need neither the database nor a daemon.
async fn standalone(
    command: Command,
    config: &Config,
    config_path: Option<&Path>,
    #[allow(unused_variables)] data_dir: Option<std::path::PathBuf>,
) -> Result<Output> {
    match command {
        Command::Connector(command) => super::connector::run(command, config).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <super::args::Cli as clap::CommandFactory>::command(),
                "passerelle",
                &mut script,
            );
            Ok(Output::Text(String::from_utf8_lossy(&script).into_owned()))
        }
        Command::Man { out } => super::manual::write(out.as_deref()),
        Command::Restore { file, check } => {
            let data_dir = data_dir.unwrap_or_else(passerelle_service::config::default_data_dir);
            let report = match file {
                Some(file) if !check => {
                    passerelle_service::backup::restore(&file, &data_dir, config.clone()).await?
                }
                _ => passerelle_service::backup::check(&data_dir, config.clone()).await?,
            };
            Ok(Output::Restored(report))
        }
        Command::Serve { .. } => check_config(config, config_path),
        #[cfg(feature = "dev")]
        Command::Demo {
            plugins_dir,
            practices,
            seed,
            full,
            reset,
        } => {
            let report = passerelle_dev::demo::run(passerelle_dev::demo::DemoOptions {
                data_dir: data_dir.unwrap_or_else(|| {
                    passerelle_service::config::default_data_dir().with_file_name("passerelle-demo")
                }),
                database_url: config.database_url.clone(),
                plugins_dir,
                practices,
                seed,
                full,
                reset,
            })
            .await?;
            Ok(Output::Demo(report))
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
            let sim = passerelle_sim::SimConfig {
                seed,
                practices,
                appointments_per_account: appointments,
                dentist_every,
                availability_days,
                platforms,
                ..passerelle_sim::SimConfig::default()
            };
            passerelle_dev::sim::serve_simulator(sim, listen, advance_every).await?;
            Ok(Output::Nothing)
        }
        other => bail!("`{other:?}` is not a standalone command"),
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
        Command::Practices(PracticesCmd::Show { id }) => {
            Output::Practice(admin.practice(&id).await?)
        }
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
            unset,
            clear,
        }) => {
            use super::args::PublicField as F;
            let gone = |f: F| unset.contains(&f);
            let public = (!clear).then(|| PublicPatch {
                department,
                address: patched(address, gone(F::Address)),
                city: patched(city, gone(F::City)),
                postcode: patched(postcode, gone(F::Postcode)),
                latitude: patched(latitude, gone(F::Coordinates)),
                longitude: patched(longitude, gone(F::Coordinates)),
                booking_url: patched(booking_url, gone(F::BookingUrl)),
                kind: patched(kind, gone(F::Type)),
            });
            let update = PracticeUpdate {
                public: Some(public),
                ..PracticeUpdate::default()
            };
            Output::Practice(admin.update_practice(&id, update).await?)
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
            secrets,
            force,
        }) => {
            let secrets = read_secret_lines(&secrets)?;
            Output::AccountAdded(
                admin
                    .create_account(
                        &practice,
                        NewAccount {
                            id,
                            connector,
                            label,
                            settings: settings.into_iter().collect(),
                            secrets: SecretValues(secrets),
                            force,
                        },
                    )
                    .await?,
            )
        }
        Command::Accounts(AccountsCmd::Update {
            id,
            settings,
            unset,
            label,
            no_label,
            force,
        }) => {
            let mut merge_settings: std::collections::BTreeMap<String, Option<String>> =
                unset.into_iter().map(|k| (k, None)).collect();
            merge_settings.extend(settings.into_iter().map(|(k, v)| (k, Some(v))));
            let update = AccountUpdate {
                label: patched(label, no_label),
                merge_settings,
                force,
                ..AccountUpdate::default()
            };
            Output::AccountUpdated(admin.update_account(&id, update).await?)
        }
        Command::Accounts(AccountsCmd::Remove { id, with_data }) => {
            admin.delete_account(&id, with_data).await?;
            Output::AccountRemoved(id)
        }
        Command::Accounts(AccountsCmd::List { practice }) => {
            Output::Accounts(admin.accounts(practice.as_deref()).await?)
        }
        Command::Accounts(AccountsCmd::Show { id }) => Output::Account(admin.account(&id).await?),
        Command::Accounts(AccountsCmd::SetPublic {
            id,
            booking_url,
            kind,
            unset,
            clear,
        }) => {
            use super::args::ListingField as F;
            let listing = (!clear).then(|| ListingPatch {
                booking_url: patched(booking_url, unset.contains(&F::BookingUrl)),
                kind: patched(kind, unset.contains(&F::Type)),
            });
            let update = AccountUpdate {
                listing: Some(listing),
                ..AccountUpdate::default()
            };
            Output::Account(admin.update_account(&id, update).await?.account)
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
        Command::Plugins(PluginsCmd::Shadow { name, version }) => {
            Output::Shadow(admin.shadow(&name, &version).await?)
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
            cmd: Some(RunsCmd::Cassette { run, out }),
            ..
        } => {
            // Refused before the read, which is audited.
            passerelle_kit::record::ensure_empty(&out)?;
            let found = admin.run_cassette(run).await?;
            passerelle_kit::record::write_cassette(
                &out,
                &found.cassette,
                &format!("passerelle runs cassette {run}"),
            )?;
            Output::CassetteWritten {
                dir: out,
                cassette: found,
            }
        }
        Command::Runs {
            cmd: None,
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
            allow_cleartext,
            after,
        }) => Output::SubscriptionAdded(
            admin
                .add_subscription(AddSubscription {
                    url,
                    practices,
                    kinds,
                    patients,
                    allow_private,
                    allow_cleartext,
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
        other => bail!("this command cannot run against a daemon: {other:?}"),
    })
}

/// The commands that only exist on this machine (they read its files or database).
async fn here(app: &Passerelle, command: Command) -> Result<Output> {
    let command = &command;
    match command {
        Command::Plugins(PluginsCmd::Validate { files, shadow }) => {
            super::validate::validate(app, files, *shadow).await
        }
        Command::Backup { out } => app
            .backup(out)
            .await
            .map(Output::BackedUp)
            .map_err(Into::into),
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
        other => bail!("this command runs against the service: {other:?}"),
    }
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

/// `serve --check-config`: the effective configuration (secrets hidden), or the error.
fn check_config(config: &Config, path: Option<&Path>) -> Result<Output> {
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
    Ok(Output::Text(format!(
        "{text}\nconfiguration OK ({})\n",
        match path {
            Some(p) => format!("{} and the environment", p.display()),
            None => "defaults and the environment".into(),
        }
    )))
}

/// A secret's value from the named environment variable or standard input; never
/// from the command line (it would land in shell history and `ps`).
/// The values of `names` from standard input, one line each in order (a prompt per
/// value on a terminal).
fn read_secret_lines(names: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut values = std::collections::BTreeMap::new();
    let stdin = std::io::stdin();
    for name in names {
        if stdin.is_terminal() {
            eprintln!("type the value of secret `{name}`, then Enter:");
        }
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        let value = line.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            bail!("no value for secret `{name}` on standard input (one line per --secret, in order): nothing stored");
        }
        if values.insert(name.clone(), value.to_string()).is_some() {
            bail!("secret `{name}` given twice");
        }
    }
    Ok(values)
}

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
