//! The one interface the command line drives, with two implementations: [`Local`], over
//! the service on this machine's database, and the admin-API [`Client`] of a running
//! daemon (`--server`). Both return the service's types, so the renderer cannot tell
//! them apart; where the daemon queues work (sync, resume), the client waits for it.

use passerelle_model::daemon::DaemonRow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;

use super::progress::Progress;
use crate::client::Client;
use passerelle_model::connector::Activation;
use passerelle_model::connector::{Canary, Rejection};
use passerelle_model::pause::Pause;
use passerelle_model::quarantine::{QuarantineFilter, QuarantinedItem};
use passerelle_model::run::{Run, Status};
use passerelle_service::accounts::{AccountUpdate, CheckedAccount, NewAccount};
use passerelle_service::app::Passerelle;
use passerelle_service::check::AccountCheck;
use passerelle_service::connectors::{ConnectorView, InstallAnswer};
use passerelle_service::feed::{ChangePage, ChangeQuery};
use passerelle_service::flight::shadow::ShadowReport;
use passerelle_service::flight::RunCassette;
use passerelle_service::practices::{NewPractice, PracticeUpdate, PracticeView};
use passerelle_service::records::{AppointmentPage, AppointmentQuery, SlotPage, SlotQuery};
use passerelle_service::runs::{RunQuery, SyncRequest};
use passerelle_service::subscriptions::{AddSubscription, CreatedSubscription, SubscriptionView};
use passerelle_service::ServiceError;
use passerelle_store::practices::Account;

/// What the command line can ask, locally or of a daemon.
#[allow(async_fn_in_trait)]
pub trait Admin {
    async fn practices(&self) -> Result<Vec<PracticeView>>;
    async fn create_practice(&self, new: NewPractice) -> Result<PracticeView>;
    async fn update_practice(&self, id: &str, update: PracticeUpdate) -> Result<PracticeView>;
    async fn practice(&self, id: &str) -> Result<PracticeView>;
    async fn account(&self, id: &str) -> Result<Account>;
    async fn update_account(&self, id: &str, update: AccountUpdate) -> Result<CheckedAccount>;
    async fn accounts(&self, practice: Option<&str>) -> Result<Vec<Account>>;
    async fn create_account(&self, practice: &str, new: NewAccount) -> Result<CheckedAccount>;
    async fn delete_account(&self, id: &str, with_data: bool) -> Result<()>;
    async fn set_secret(&self, account: &str, name: &str, value: &str) -> Result<()>;
    async fn check_account(&self, account: &str) -> Result<AccountCheck>;
    async fn paused(&self, connector: Option<&str>) -> Result<Vec<Pause>>;
    async fn quarantined(&self, filter: QuarantineFilter) -> Result<Vec<QuarantinedItem>>;
    /// Lifts a drift pause and re-drives the account; the run, finished.
    async fn resume(&self, account: &str, progress: &Progress) -> Result<Run>;
    async fn connectors(&self) -> Result<Vec<ConnectorView>>;
    async fn rejections(&self, limit: Option<i64>) -> Result<Vec<Rejection>>;
    /// Installs one component file; a refusal is an error with the reason.
    async fn install(&self, file: &Path) -> Result<InstallAnswer>;
    async fn approve(&self, name: &str, version: &str) -> Result<Activation>;
    /// A kept version replayed on its connector's recorded cassettes.
    async fn shadow(&self, name: &str, version: &str) -> Result<ShadowReport>;
    async fn rollback(&self, name: &str, version: Option<&str>) -> Result<Activation>;
    async fn start_canary(&self, name: &str, version: &str, practices: &[String])
        -> Result<Canary>;
    async fn promote(&self, name: &str) -> Result<Activation>;
    async fn stop_canary(&self, name: &str) -> Result<()>;
    /// Syncs a practice's accounts (or one); the runs, finished.
    async fn sync(
        &self,
        practice: &str,
        request: SyncRequest,
        progress: &Progress,
    ) -> Result<Vec<Run>>;
    async fn runs(&self, query: RunQuery) -> Result<Vec<Run>>;
    /// The flight recorder's cassette of a run (audited).
    async fn run_cassette(&self, run: i64) -> Result<RunCassette>;
    async fn daemons(&self) -> Result<Vec<DaemonRow>>;
    async fn appointments(
        &self,
        practice: &str,
        query: AppointmentQuery,
    ) -> Result<AppointmentPage>;
    async fn slots(&self, query: SlotQuery) -> Result<SlotPage>;
    async fn changes(&self, query: ChangeQuery) -> Result<ChangePage>;
    async fn subscriptions(&self) -> Result<Vec<SubscriptionView>>;
    async fn add_subscription(&self, add: AddSubscription) -> Result<CreatedSubscription>;
    async fn remove_subscription(&self, id: &str) -> Result<()>;
    async fn replay_subscription(&self, id: &str, after: i64) -> Result<SubscriptionView>;
}

/// The service on this machine's database.
pub struct Local(pub Arc<Passerelle>);

fn local<T>(r: Result<T, ServiceError>) -> Result<T> {
    r.map_err(anyhow::Error::from)
}

impl Admin for Local {
    async fn practices(&self) -> Result<Vec<PracticeView>> {
        local(self.0.practices(Utc::now()).await)
    }
    async fn create_practice(&self, new: NewPractice) -> Result<PracticeView> {
        local(self.0.create_practice(new, Utc::now()).await)
    }
    async fn update_practice(&self, id: &str, update: PracticeUpdate) -> Result<PracticeView> {
        local(self.0.update_practice(id, update, Utc::now()).await)
    }
    async fn practice(&self, id: &str) -> Result<PracticeView> {
        local(self.0.show_practice(id, Utc::now()).await)
    }
    async fn account(&self, id: &str) -> Result<Account> {
        local(self.0.account(id).await)
    }
    async fn update_account(&self, id: &str, update: AccountUpdate) -> Result<CheckedAccount> {
        local(self.0.update_account(id, update).await)
    }
    async fn accounts(&self, practice: Option<&str>) -> Result<Vec<Account>> {
        local(self.0.accounts(practice).await)
    }
    async fn create_account(&self, practice: &str, new: NewAccount) -> Result<CheckedAccount> {
        local(self.0.create_account(practice, new).await)
    }
    async fn delete_account(&self, id: &str, with_data: bool) -> Result<()> {
        local(self.0.delete_account(id, with_data).await)
    }
    async fn set_secret(&self, account: &str, name: &str, value: &str) -> Result<()> {
        local(self.0.set_secret(account, name, value).await)
    }
    async fn check_account(&self, account: &str) -> Result<AccountCheck> {
        local(self.0.check_account(account).await)
    }
    async fn paused(&self, connector: Option<&str>) -> Result<Vec<Pause>> {
        local(self.0.paused(connector).await)
    }
    async fn quarantined(&self, filter: QuarantineFilter) -> Result<Vec<QuarantinedItem>> {
        local(self.0.quarantined(filter).await)
    }
    async fn resume(&self, account: &str, progress: &Progress) -> Result<Run> {
        progress.message(&format!("re-driving {account}"));
        local(self.0.resume_here(account).await)
    }
    async fn connectors(&self) -> Result<Vec<ConnectorView>> {
        local(self.0.connector_views().await)
    }
    async fn rejections(&self, limit: Option<i64>) -> Result<Vec<Rejection>> {
        local(self.0.rejections(limit).await)
    }
    async fn install(&self, file: &Path) -> Result<InstallAnswer> {
        local(self.0.install_plugin(file).await.map(InstallAnswer::from))
    }
    async fn approve(&self, name: &str, version: &str) -> Result<Activation> {
        local(self.0.approve(name, version).await)
    }
    async fn shadow(&self, name: &str, version: &str) -> Result<ShadowReport> {
        local(self.0.shadow(name, version).await)
    }
    async fn rollback(&self, name: &str, version: Option<&str>) -> Result<Activation> {
        local(self.0.rollback(name, version).await)
    }
    async fn start_canary(
        &self,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> Result<Canary> {
        local(self.0.start_canary(name, version, practices).await)
    }
    async fn promote(&self, name: &str) -> Result<Activation> {
        local(self.0.promote(name).await)
    }
    async fn stop_canary(&self, name: &str) -> Result<()> {
        local(self.0.stop_canary(name).await)
    }
    async fn sync(
        &self,
        practice: &str,
        request: SyncRequest,
        progress: &Progress,
    ) -> Result<Vec<Run>> {
        local(
            self.0
                .sync_here(practice, &request, |i, n, account| {
                    progress.message(&format!("syncing {} ({}/{n})", account.id, i + 1))
                })
                .await,
        )
    }
    async fn runs(&self, query: RunQuery) -> Result<Vec<Run>> {
        local(self.0.runs(&query).await)
    }
    async fn run_cassette(&self, run: i64) -> Result<RunCassette> {
        local(self.0.run_cassette(run).await)
    }
    async fn daemons(&self) -> Result<Vec<DaemonRow>> {
        local(self.0.daemons().await)
    }
    async fn appointments(
        &self,
        practice: &str,
        query: AppointmentQuery,
    ) -> Result<AppointmentPage> {
        local(self.0.appointments_page(practice, &query).await)
    }
    async fn slots(&self, query: SlotQuery) -> Result<SlotPage> {
        local(self.0.slots_page(&query).await)
    }
    async fn changes(&self, query: ChangeQuery) -> Result<ChangePage> {
        local(self.0.changes(&query).await)
    }
    async fn subscriptions(&self) -> Result<Vec<SubscriptionView>> {
        local(self.0.subscriptions().await)
    }
    async fn add_subscription(&self, add: AddSubscription) -> Result<CreatedSubscription> {
        local(self.0.add_subscription(&add).await)
    }
    async fn remove_subscription(&self, id: &str) -> Result<()> {
        local(self.0.remove_subscription(id).await)
    }
    async fn replay_subscription(&self, id: &str, after: i64) -> Result<SubscriptionView> {
        local(self.0.replay_subscription(id, after).await)
    }
}

impl Admin for Client {
    async fn practices(&self) -> Result<Vec<PracticeView>> {
        Ok(Client::practices(self).await?)
    }
    async fn create_practice(&self, new: NewPractice) -> Result<PracticeView> {
        Ok(Client::create_practice(self, &new).await?)
    }
    async fn update_practice(&self, id: &str, update: PracticeUpdate) -> Result<PracticeView> {
        Ok(Client::update_practice(self, id, &update).await?)
    }
    async fn practice(&self, id: &str) -> Result<PracticeView> {
        Ok(Client::practice(self, id).await?)
    }
    async fn account(&self, id: &str) -> Result<Account> {
        Ok(Client::account(self, id).await?)
    }
    async fn update_account(&self, id: &str, update: AccountUpdate) -> Result<CheckedAccount> {
        Ok(Client::update_account(self, id, &update).await?)
    }
    async fn accounts(&self, practice: Option<&str>) -> Result<Vec<Account>> {
        Ok(Client::accounts(self, practice).await?)
    }
    async fn create_account(&self, practice: &str, new: NewAccount) -> Result<CheckedAccount> {
        Ok(Client::create_account(self, practice, &new).await?)
    }
    async fn delete_account(&self, id: &str, with_data: bool) -> Result<()> {
        Ok(Client::delete_account(self, id, with_data).await?)
    }
    async fn set_secret(&self, account: &str, name: &str, value: &str) -> Result<()> {
        Ok(Client::set_secret(self, account, name, value).await?)
    }
    async fn check_account(&self, account: &str) -> Result<AccountCheck> {
        Ok(Client::check_account(self, account).await?)
    }
    async fn paused(&self, connector: Option<&str>) -> Result<Vec<Pause>> {
        Ok(Client::paused(self, connector).await?)
    }
    async fn quarantined(&self, filter: QuarantineFilter) -> Result<Vec<QuarantinedItem>> {
        Ok(Client::quarantined(self, &filter).await?)
    }
    async fn resume(&self, account: &str, progress: &Progress) -> Result<Run> {
        let resumed = Client::resume(self, account).await?;
        progress.message(&format!("re-driving {account} (run {})", resumed.run_id));
        let mut runs = wait_for_runs(self, &[resumed.run_id], progress).await?;
        Ok(runs.remove(0))
    }
    async fn connectors(&self) -> Result<Vec<ConnectorView>> {
        Ok(Client::connectors(self).await?)
    }
    async fn rejections(&self, limit: Option<i64>) -> Result<Vec<Rejection>> {
        Ok(Client::rejections(self, limit).await?)
    }
    async fn install(&self, file: &Path) -> Result<InstallAnswer> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        Ok(Client::install(self, bytes).await?)
    }
    async fn approve(&self, name: &str, version: &str) -> Result<Activation> {
        Ok(Client::approve(self, name, version).await?)
    }
    async fn shadow(&self, name: &str, version: &str) -> Result<ShadowReport> {
        Ok(Client::shadow(self, name, version).await?)
    }
    async fn rollback(&self, name: &str, version: Option<&str>) -> Result<Activation> {
        Ok(Client::rollback(self, name, version).await?)
    }
    async fn start_canary(
        &self,
        name: &str,
        version: &str,
        practices: &[String],
    ) -> Result<Canary> {
        Ok(Client::start_canary(self, name, version, practices).await?)
    }
    async fn promote(&self, name: &str) -> Result<Activation> {
        Ok(Client::promote(self, name).await?)
    }
    async fn stop_canary(&self, name: &str) -> Result<()> {
        Ok(Client::stop_canary(self, name).await?)
    }
    async fn sync(
        &self,
        practice: &str,
        request: SyncRequest,
        progress: &Progress,
    ) -> Result<Vec<Run>> {
        let accepted = Client::sync(self, practice, &request).await?;
        let ids: Vec<i64> = accepted.runs.iter().map(|r| r.run_id).collect();
        wait_for_runs(self, &ids, progress).await
    }
    async fn runs(&self, query: RunQuery) -> Result<Vec<Run>> {
        Ok(Client::runs(self, &query).await?)
    }
    async fn run_cassette(&self, run: i64) -> Result<RunCassette> {
        Ok(Client::run_cassette(self, run).await?)
    }
    async fn daemons(&self) -> Result<Vec<DaemonRow>> {
        Ok(Client::daemons(self).await?)
    }
    async fn appointments(
        &self,
        practice: &str,
        query: AppointmentQuery,
    ) -> Result<AppointmentPage> {
        Ok(Client::appointments(self, practice, &query).await?)
    }
    async fn slots(&self, query: SlotQuery) -> Result<SlotPage> {
        Ok(Client::slots(self, &query).await?)
    }
    async fn changes(&self, query: ChangeQuery) -> Result<ChangePage> {
        Ok(Client::changes(self, &query).await?)
    }
    async fn subscriptions(&self) -> Result<Vec<SubscriptionView>> {
        Ok(Client::subscriptions(self).await?)
    }
    async fn add_subscription(&self, add: AddSubscription) -> Result<CreatedSubscription> {
        Ok(Client::add_subscription(self, &add).await?)
    }
    async fn remove_subscription(&self, id: &str) -> Result<()> {
        Ok(Client::remove_subscription(self, id).await?)
    }
    async fn replay_subscription(&self, id: &str, after: i64) -> Result<SubscriptionView> {
        Ok(Client::replay_subscription(self, id, after).await?)
    }
}

/// Polls the runs until none is queued or running, showing how many are done.
async fn wait_for_runs(client: &Client, ids: &[i64], progress: &Progress) -> Result<Vec<Run>> {
    loop {
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            runs.push(client.run(*id).await?);
        }
        let open = runs
            .iter()
            .filter(|r| matches!(r.status, Status::Queued | Status::Running))
            .count();
        if open == 0 {
            return Ok(runs);
        }
        progress.message(&format!(
            "waiting for the daemon: {} of {} run(s) done",
            runs.len() - open,
            runs.len()
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
