//! The watched plugins directory (`plugins.watch_dir`, default `<data dir>/incoming`):
//! a component file dropped there goes through the one installation path.
//!
//! - A file is considered once it has been quiet for `plugins.settle_ms` (debounced by
//!   `notify-debouncer-mini`), and only if its size and modification time did not change
//!   while it was read; a half-written file never reaches the installer in a form that
//!   could load (a truncated component does not compile either, and is retried when the
//!   writer finishes).
//! - Names starting with `.` and names not ending in `.wasm` are ignored: write to
//!   `.name.part` and rename for an atomic drop.
//! - `incoming/<connector>/<file>.wasm` must describe itself as `<connector>`;
//!   `incoming/<file>.wasm` may be any connector.
//! - Files stay where they are (the directory can be the operator's plugins folder). The
//!   same content is considered once per process; at start every file is looked at once,
//!   and content already installed changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult};

use super::{until_true, Daemon};
use crate::model::connector::Outcome;
use crate::model::sha256_hex;
use crate::plugins::Candidate;
use crate::service::ServiceError;

/// The directory a daemon watches.
pub fn watch_dir(config: &crate::config::Config, data_dir: &Path) -> PathBuf {
    config
        .plugins
        .watch_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("incoming"))
}

impl Daemon {
    /// Watches the plugins directory until shutdown. Errors setting the watch up are
    /// returned at start (the daemon refuses to start with a watch it cannot keep).
    pub(crate) fn start_watching(self: &Arc<Self>) -> Result<Option<tokio::task::JoinHandle<()>>> {
        let config = &self.app.config.plugins;
        if !config.watch {
            return Ok(None);
        }
        let dir = watch_dir(&self.app.config, &self.app.data_dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the watched plugins directory {}", dir.display()))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
        let mut debouncer = new_debouncer(
            Duration::from_millis(config.settle_ms),
            move |res: DebounceEventResult| match res {
                Ok(events) => {
                    let _ = tx.send(events.into_iter().map(|e| e.path).collect());
                }
                Err(e) => tracing::error!("watching the plugins directory: {e}"),
            },
        )
        .context("setting up the plugins directory watch")?;
        debouncer
            .watcher()
            .watch(&dir, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), "watching for connector components (*.wasm)");
        let daemon = self.clone();
        Ok(Some(tokio::spawn(async move {
            let _keep = debouncer;
            let mut seen: HashMap<PathBuf, String> = HashMap::new();
            let mut stopping = daemon.stopping.subscribe();
            let existing = wasm_files(&dir);
            daemon.consider(&dir, existing, &mut seen).await;
            loop {
                tokio::select! {
                    paths = rx.recv() => match paths {
                        Some(paths) => daemon.consider(&dir, paths, &mut seen).await,
                        None => return,
                    },
                    _ = until_true(&mut stopping) => return,
                }
            }
        })))
    }

    async fn consider(
        &self,
        root: &Path,
        paths: Vec<PathBuf>,
        seen: &mut HashMap<PathBuf, String>,
    ) {
        let mut paths: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| is_candidate(root, p))
            .collect();
        paths.sort();
        paths.dedup();
        for path in paths {
            let Some(bytes) = read_settled(&path).await else {
                continue;
            };
            let sha = sha256_hex(&bytes);
            if seen.get(&path) == Some(&sha) {
                continue;
            }
            seen.insert(path.clone(), sha);
            let expected_name = path
                .parent()
                .filter(|p| *p != root)
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let candidate = Candidate {
                bytes,
                source: format!("watched:{}", path.display()),
                expected_name,
            };
            match self.app.install(candidate).await {
                Ok(i) => match i.outcome {
                    Outcome::Activated => tracing::info!(
                        file = %path.display(),
                        connector = %i.manifest.name,
                        version = %i.manifest.version,
                        "watched file installed and activated"
                    ),
                    Outcome::PendingApproval => {} // logged by the installer, with the diff
                    Outcome::AlreadyInstalled => tracing::debug!(
                        file = %path.display(),
                        "watched file already installed"
                    ),
                },
                Err(ServiceError::Rejected(_)) => {} // logged and recorded
                Err(e) => tracing::error!(file = %path.display(), "cannot install: {e:#}"),
            }
        }
    }
}

/// Files under `dir` (the caller filters them).
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(wasm_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A visible `*.wasm` file at most one directory below the root.
fn is_candidate(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let parts: Vec<_> = rel.components().collect();
    let visible = rel
        .components()
        .all(|c| !c.as_os_str().to_string_lossy().starts_with('.'));
    visible && (1..=2).contains(&parts.len()) && path.extension().is_some_and(|e| e == "wasm")
}

/// The file's bytes if it exists and did not change while being read.
async fn read_settled(path: &Path) -> Option<Vec<u8>> {
    let stamp = |m: std::fs::Metadata| (m.len(), m.modified().ok());
    let before = tokio::fs::metadata(path)
        .await
        .ok()
        .filter(|m| m.is_file())?;
    let bytes = tokio::fs::read(path).await.ok()?;
    let after = tokio::fs::metadata(path).await.ok()?;
    let (b, a) = (stamp(before), stamp(after));
    (b == a && b.0 == bytes.len() as u64).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use crate::daemon::plugin_watch::*;

    #[test]
    fn candidates() {
        let root = Path::new("/in");
        assert!(is_candidate(root, Path::new("/in/doctolib.wasm")));
        assert!(is_candidate(root, Path::new("/in/doctolib/1.2.wasm")));
        assert!(!is_candidate(root, Path::new("/in/.doctolib.wasm")));
        assert!(!is_candidate(root, Path::new("/in/doctolib.wasm.part")));
        assert!(!is_candidate(root, Path::new("/in/.tmp/x.wasm")));
        assert!(!is_candidate(root, Path::new("/in/a/b/x.wasm")));
        assert!(!is_candidate(root, Path::new("/elsewhere/x.wasm")));
    }
}
