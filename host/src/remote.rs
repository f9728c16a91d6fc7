//! The command line as a client of a running daemon (`--server URL`): the same commands,
//! sent to the admin API instead of the database, printed the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::api::connectors::{ConnectorView, InstallAnswer, Resumed};
use crate::api::practices::PracticeView;
use crate::api::runs::SyncAccepted;
use crate::cli::{
    account_line, activation_line, canary_line, install_line, print_pauses, print_quarantined,
    print_rejections, print_versions, read_secret_value, report_sync, run_table, AccountsCmd,
    Command, PluginsCmd, PracticesCmd,
};
use crate::plugins::Activation;
use crate::store::connectors::{Canary, Rejection};
use crate::store::pauses::Pause;
use crate::store::practices::Account;
use crate::store::quarantine::QuarantinedItem;
use crate::store::runs::{Run, Status};

/// A client of one daemon.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server must be an http:// or https:// URL, such as http://127.0.0.1:8787");
        }
        Ok(Client {
            base,
            token: token.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// Uploads bytes (a component) with POST.
    pub async fn upload<T: DeserializeOwned>(&self, path: &str, bytes: Vec<u8>) -> Result<T> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                .timeout(Duration::from_secs(300))
                .body(bytes),
        )
        .await
    }

    /// Sends a request; a JSON error answer becomes an error with its message.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let request = request.bearer_auth(&self.token).build()?;
        let url = request.url().clone();
        let response = self
            .http
            .execute(request)
            .await
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            if status == StatusCode::UNAUTHORIZED {
                bail!("the daemon refused the token ({message}); give it with --token or PASSERELLE_TOKEN");
            }
            bail!("the daemon answered {status}: {message}");
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).with_context(|| format!("unexpected answer from {url}"))
    }
}

/// Runs a command against the daemon.
pub async fn dispatch(client: &Client, command: Command) -> Result<()> {
    match command {
        Command::Practices(PracticesCmd::Add {
            id,
            name,
            timezone,
            schedule,
        }) => {
            let mut body = json!({"id": id, "name": name, "timezone": timezone});
            if let Some(s) = schedule {
                body["schedule"] = json!(s);
            }
            let p: PracticeView = client
                .call(Method::POST, "/v1/practices", Some(body))
                .await?;
            println!(
                "added practice {} ({}, {})",
                p.practice.id, p.practice.name, p.practice.timezone
            );
            println!("{}", p.schedule_line());
        }
        Command::Practices(PracticesCmd::List) => {
            let practices: Vec<PracticeView> =
                client.call(Method::GET, "/v1/practices", None).await?;
            if practices.is_empty() {
                println!(
                    "no practices yet: add one with `passerelle practices add ID --name NAME`"
                );
            }
            for p in practices {
                println!(
                    "{:<20} {:<16} {}",
                    p.practice.id, p.practice.timezone, p.practice.name
                );
                println!("  {}", p.schedule_line());
            }
        }
        Command::Practices(PracticesCmd::SetSchedule { id, cron, default }) => {
            let cron = if default { None } else { cron };
            let p: PracticeView = client
                .call(
                    Method::PATCH,
                    &format!("/v1/practices/{id}"),
                    Some(json!({ "schedule": cron })),
                )
                .await?;
            println!("{}", p.schedule_line());
        }
        Command::Accounts(AccountsCmd::Add {
            id,
            practice,
            connector,
            label,
            settings,
        }) => {
            let settings: BTreeMap<String, String> = settings.into_iter().collect();
            let a: Account = client
                .call(
                    Method::POST,
                    &format!("/v1/practices/{practice}/accounts"),
                    Some(json!({"id": id, "connector": connector, "label": label, "settings": settings})),
                )
                .await?;
            println!(
                "added account {} of practice {} on {}",
                a.id, a.practice_id, a.connector
            );
        }
        Command::Accounts(AccountsCmd::List { practice }) => {
            let accounts: Vec<Account> = match practice {
                Some(p) => {
                    client
                        .call(Method::GET, &format!("/v1/practices/{p}/accounts"), None)
                        .await?
                }
                None => {
                    let practices: Vec<PracticeView> =
                        client.call(Method::GET, "/v1/practices", None).await?;
                    let mut all = Vec::new();
                    for p in practices {
                        let a: Vec<Account> = client
                            .call(
                                Method::GET,
                                &format!("/v1/practices/{}/accounts", p.practice.id),
                                None,
                            )
                            .await?;
                        all.extend(a);
                    }
                    all
                }
            };
            for a in accounts {
                println!("{}", account_line(&a));
            }
        }
        Command::Accounts(AccountsCmd::SetSecret {
            account,
            name,
            from_env,
        }) => {
            let value = read_secret_value(&name, from_env.as_deref())?;
            let _: Value = client
                .call(
                    Method::PUT,
                    &format!("/v1/accounts/{account}/secrets/{name}"),
                    Some(json!({ "value": value })),
                )
                .await?;
            println!("stored secret `{name}` of account {account}");
        }
        Command::Plugins(PluginsCmd::List) => {
            let versions: Vec<ConnectorView> =
                client.call(Method::GET, "/v1/connectors", None).await?;
            let rejections: Vec<Rejection> = client
                .call(Method::GET, "/v1/connectors/rejections?limit=5", None)
                .await?;
            print_versions(&versions, &rejections);
        }
        Command::Plugins(PluginsCmd::Install { files }) => {
            let mut failed = 0;
            for file in files {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                match client
                    .upload::<InstallAnswer>("/v1/connectors", bytes)
                    .await
                {
                    Ok(i) => println!("{}", install_line(&i)),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {}: {e:#}", file.display());
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} component(s) rejected");
            }
        }
        Command::Plugins(PluginsCmd::Approve { name, version }) => {
            let a: Activation = client
                .call(
                    Method::POST,
                    &format!("/v1/connectors/{name}/approve"),
                    Some(json!({ "version": version })),
                )
                .await?;
            println!("{}", activation_line(&a));
        }
        Command::Plugins(PluginsCmd::Rollback { name, version }) => {
            let a: Activation = client
                .call(
                    Method::POST,
                    &format!("/v1/connectors/{name}/rollback"),
                    Some(json!({ "version": version })),
                )
                .await?;
            println!("{}", activation_line(&a));
        }
        Command::Plugins(PluginsCmd::Canary {
            name,
            version,
            practices,
        }) => {
            let c: Canary = client
                .call(
                    Method::POST,
                    &format!("/v1/connectors/{name}/canary"),
                    Some(json!({ "version": version, "practices": practices })),
                )
                .await?;
            println!("{}", canary_line(&c));
        }
        Command::Plugins(PluginsCmd::Promote { name }) => {
            let a: Activation = client
                .call(
                    Method::POST,
                    &format!("/v1/connectors/{name}/promote"),
                    None,
                )
                .await?;
            println!("{}", activation_line(&a));
        }
        Command::Plugins(PluginsCmd::StopCanary { name }) => {
            let _: Value = client
                .call(
                    Method::DELETE,
                    &format!("/v1/connectors/{name}/canary"),
                    None,
                )
                .await?;
            println!("canary of {name} stopped: its practices run the active version");
        }
        Command::Plugins(PluginsCmd::Rejections { limit }) => {
            let r: Vec<Rejection> = client
                .call(
                    Method::GET,
                    &format!("/v1/connectors/rejections?limit={limit}"),
                    None,
                )
                .await?;
            print_rejections(&r);
        }
        Command::Accounts(AccountsCmd::Paused { connector }) => {
            let path = match connector {
                Some(c) => format!("/v1/paused?connector={c}"),
                None => "/v1/paused".into(),
            };
            let p: Vec<Pause> = client.call(Method::GET, &path, None).await?;
            print_pauses(&p);
        }
        Command::Accounts(AccountsCmd::Quarantined {
            connector,
            account,
            show_items,
            limit,
        }) => {
            let mut query = vec![format!("limit={limit}"), format!("with_items={show_items}")];
            query.extend(connector.map(|c| format!("connector={c}")));
            query.extend(account.map(|a| format!("account={a}")));
            let items: Vec<QuarantinedItem> = client
                .call(
                    Method::GET,
                    &format!("/v1/quarantine?{}", query.join("&")),
                    None,
                )
                .await?;
            print_quarantined(&items);
        }
        Command::Accounts(AccountsCmd::Resume { id }) => {
            let r: Resumed = client
                .call(Method::POST, &format!("/v1/accounts/{id}/resume"), None)
                .await?;
            println!(
                "pause lifted; run {} re-drives {} from its last checkpoint{}",
                r.run_id,
                r.account_id,
                if r.coalesced { " (already queued)" } else { "" }
            );
        }
        Command::Sync {
            practice,
            account,
            full,
        } => {
            let accepted: SyncAccepted = client
                .call(
                    Method::POST,
                    &format!("/v1/practices/{practice}/sync"),
                    Some(json!({"account": account, "full": full})),
                )
                .await?;
            for r in &accepted.runs {
                eprintln!(
                    "run {} for {}{}",
                    r.run_id,
                    r.account_id,
                    if r.coalesced {
                        " (already queued or running)"
                    } else {
                        " queued"
                    }
                );
            }
            let runs = wait_for_runs(client, &accepted).await?;
            report_sync(&runs, &practice)?;
        }
        Command::Runs {
            practice,
            account,
            status,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            if let Some(p) = practice {
                query.push(format!("practice={p}"));
            }
            if let Some(a) = account {
                query.push(format!("account={a}"));
            }
            if let Some(s) = status {
                query.push(format!("status={s}"));
            }
            let runs: Vec<Run> = client
                .call(Method::GET, &format!("/v1/runs?{}", query.join("&")), None)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", run_table(&runs));
            }
        }
        other => bail!(
            "`{}` reads or changes files on the daemon's machine: run it there, without --server",
            command_name(&other)
        ),
    }
    Ok(())
}

/// Polls the runs until none is queued or running.
async fn wait_for_runs(client: &Client, accepted: &SyncAccepted) -> Result<Vec<Run>> {
    loop {
        let mut runs = Vec::new();
        for r in &accepted.runs {
            let run: Run = client
                .call(Method::GET, &format!("/v1/runs/{}", r.run_id), None)
                .await?;
            runs.push(run);
        }
        if runs
            .iter()
            .all(|r| !matches!(r.status, Status::Queued | Status::Running))
        {
            return Ok(runs);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Plugins(PluginsCmd::Validate { .. }) => "plugins validate",
        Command::Appointments { .. } => "appointments",
        Command::Slots { .. } => "slots",
        Command::Demo { .. } => "demo",
        Command::Sim { .. } => "sim",
        Command::Serve { .. } => "serve",
        _ => "this command",
    }
}
