//! Keeps the open-data export fresh when `export.vitemadose_dir` is set: once the run
//! queue is empty (the night's runs are over) and the change feed has moved since the
//! last export, the files are written again ([`Passerelle::export_vitemadose`]).
//!
//! [`Passerelle::export_vitemadose`]: passerelle_service::app::Passerelle::export_vitemadose

use std::sync::Arc;
use std::time::Duration;

use super::{until_true, Daemon};

/// How often the exporter looks.
const CHECK_EVERY: Duration = Duration::from_secs(30);

impl Daemon {
    pub(crate) async fn run_exporter(self: Arc<Self>) {
        let Some(dir) = self.app.config.export.vitemadose_dir.clone() else {
            return;
        };
        let mut stopping = self.stopping.subscribe();
        let mut exported_at_head: Option<i64> = None;
        loop {
            if let Err(e) = self.refresh_export(&dir, &mut exported_at_head).await {
                tracing::error!(dir = %dir.display(), "refreshing the open-data export: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = until_true(&mut stopping) => return,
            }
        }
    }

    async fn refresh_export(
        &self,
        dir: &std::path::Path,
        exported_at_head: &mut Option<i64>,
    ) -> anyhow::Result<()> {
        let head = self.app.store.feed_state().await?.head;
        if *exported_at_head == Some(head)
            || self.queue.running() > 0
            || self.app.store.queue_depth().await? > 0
        {
            return Ok(());
        }
        let report = self.app.export_vitemadose(dir, self.now()).await?;
        tracing::info!(
            dir = %dir.display(),
            centres = report.centres,
            available = report.available,
            "open-data export written"
        );
        *exported_at_head = Some(head);
        Ok(())
    }
}
