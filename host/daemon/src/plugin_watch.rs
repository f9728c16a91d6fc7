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
//! - Symbolic links are not followed (neither files nor directories: a link loop or a
//!   link to a device must not hang or exhaust the daemon), and a file larger than
//!   `runtime.max_component_bytes` is refused from its size, before it is read.
//! - Files stay where they are (the directory can be the operator's plugins folder). The
//!   same content is considered once per process; at start every file is looked at once,
//!   and content already installed changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer_opt, DebounceEventResult};

use super::{until_true, Daemon};
use passerelle_model::connector::Outcome;
use passerelle_model::sha256_hex;
use passerelle_service::plugins::Candidate;
use passerelle_service::ServiceError;

/// The directory a daemon watches.
pub fn watch_dir(config: &passerelle_service::config::Config, data_dir: &Path) -> PathBuf {
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
        let settings = notify_debouncer_mini::Config::default()
            .with_timeout(Duration::from_millis(config.settle_ms))
            .with_notify_config(
                notify_debouncer_mini::notify::Config::default().with_follow_symlinks(false),
            );
        let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher>(
            settings,
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
        let mut paths: Vec<PathBuf> = with_new_directories_listed(root, paths)
            .into_iter()
            .filter(|p| is_candidate(root, p))
            .collect();
        paths.sort();
        paths.dedup();
        let max = self.app.config.runtime.max_component_bytes;
        for path in paths {
            let bytes = match read_settled(&path, max).await {
                Settled::Bytes(b) => b,
                Settled::Unreadable => continue,
                Settled::TooLarge(size) => {
                    let key = format!("too-large:{size}");
                    if seen.get(&path) != Some(&key) {
                        seen.insert(path.clone(), key);
                        tracing::error!(
                            file = %path.display(),
                            size,
                            max,
                            "watched file is larger than runtime.max_component_bytes: not read"
                        );
                    }
                    continue;
                }
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

/// Regular files directly under `dir` and in its subdirectories (one level, the most
/// a candidate may be below the root), without following symbolic links. The caller
/// filters them.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in entries(dir) {
        // `DirEntry::file_type` does not follow a symbolic link.
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_in(&e.path())),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
    out
}

/// The changed paths, with each directory created directly under the root replaced by
/// the files it holds. A file written into a directory just made (`mkdir doctolib && cp
/// … doctolib/`) can land before the watch on the new directory is in place, so its own
/// events never come; the directory's event does, and listing it finds the file.
fn with_new_directories_listed(root: &Path, paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir());
        if is_dir && path.parent() == Some(root) {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The directory's entries, none if it cannot be read.
fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir)
        .map(|e| e.flatten().collect())
        .unwrap_or_default()
}

/// The regular files directly in `dir` (links not followed).
fn files_in(dir: &Path) -> impl Iterator<Item = PathBuf> {
    entries(dir)
        .into_iter()
        .filter(|f| f.file_type().is_ok_and(|t| t.is_file()))
        .map(|f| f.path())
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

/// What reading a watched file gave.
enum Settled {
    Bytes(Vec<u8>),
    /// Gone, not a regular file (a symbolic link is not followed), or changing.
    Unreadable,
    /// Over the size cap: not read.
    TooLarge(u64),
}

/// The file's bytes if it is a regular file (not a link to one), at most `max` bytes,
/// and did not change while being read. The file is opened once without following a
/// link (`O_NOFOLLOW`) and every check is made on that handle (`fstat` before and
/// after, a read that stops past `max`): nothing can be swapped in between a check
/// and the read.
async fn read_settled(path: &Path, max: u64) -> Settled {
    use tokio::io::AsyncReadExt;
    let stamp = |m: &std::fs::Metadata| (m.len(), m.modified().ok());
    let Ok(file) = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .await
    else {
        return Settled::Unreadable;
    };
    let Some(before) = file
        .metadata()
        .await
        .ok()
        .filter(|m| m.file_type().is_file())
    else {
        return Settled::Unreadable;
    };
    if before.len() > max {
        return Settled::TooLarge(before.len());
    }
    let mut bytes = Vec::with_capacity(before.len() as usize);
    let mut file = file;
    if (&mut file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .await
        .is_err()
    {
        return Settled::Unreadable;
    }
    if bytes.len() as u64 > max {
        return Settled::TooLarge(bytes.len() as u64);
    }
    let Ok(after) = file.metadata().await else {
        return Settled::Unreadable;
    };
    let (b, a) = (stamp(&before), stamp(&after));
    if b == a && b.0 == bytes.len() as u64 {
        Settled::Bytes(bytes)
    } else {
        Settled::Unreadable
    }
}

#[cfg(test)]
mod tests {
    use crate::plugin_watch::*;

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

    /// A link loop (a directory linking to its parent) and a linked file are not
    /// followed; before, listing recursed through the loop until the stack overflowed.
    #[cfg(unix)]
    #[test]
    fn links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("doctolib")).unwrap();
        std::fs::write(root.join("doctolib/1.wasm"), b"x").unwrap();
        std::fs::write(root.join("top.wasm"), b"x").unwrap();
        std::os::unix::fs::symlink(root, root.join("doctolib/loop")).unwrap();
        std::os::unix::fs::symlink(root, root.join("loop")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("linked.wasm")).unwrap();
        let mut found = wasm_files(root);
        found.sort();
        assert_eq!(
            found,
            vec![root.join("doctolib/1.wasm"), root.join("top.wasm")]
        );
    }

    /// A watched file is read through one handle opened without following links:
    /// a link (even to a regular file) and a FIFO (which would block a plain open) are
    /// unreadable, a file over the cap is not read.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_watched_file_is_read_once_through_its_own_handle() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ok.wasm"), b"component").unwrap();
        std::os::unix::fs::symlink(root.join("ok.wasm"), root.join("link.wasm")).unwrap();
        nix_mkfifo(&root.join("fifo.wasm"));
        assert!(matches!(
            read_settled(&root.join("ok.wasm"), 100).await,
            Settled::Bytes(b) if b == b"component"
        ));
        assert!(matches!(
            read_settled(&root.join("link.wasm"), 100).await,
            Settled::Unreadable
        ));
        assert!(matches!(
            read_settled(&root.join("fifo.wasm"), 100).await,
            Settled::Unreadable
        ));
        assert!(matches!(
            read_settled(&root.join("ok.wasm"), 4).await,
            Settled::TooLarge(9)
        ));
    }

    fn nix_mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo reads it only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// A directory's event stands for the files already in it (they may have been
    /// written before the new directory was watched); deeper directories do not.
    #[test]
    fn a_new_directory_stands_for_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("doctolib/deeper")).unwrap();
        std::fs::write(root.join("doctolib/next.wasm"), b"x").unwrap();
        std::fs::write(root.join("doctolib/deeper/no.wasm"), b"x").unwrap();
        let listed = with_new_directories_listed(
            root,
            vec![
                root.join("doctolib"),
                root.join("doctolib/deeper"),
                root.join("top.wasm"),
            ],
        );
        let candidates: Vec<_> = listed
            .into_iter()
            .filter(|p| is_candidate(root, p))
            .collect();
        assert_eq!(
            candidates,
            vec![root.join("doctolib/next.wasm"), root.join("top.wasm")]
        );
    }

    #[tokio::test]
    async fn a_file_over_the_size_cap_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.wasm");
        std::fs::write(&file, vec![0u8; 2048]).unwrap();
        assert!(matches!(
            read_settled(&file, 1024).await,
            Settled::TooLarge(2048)
        ));
        assert!(matches!(read_settled(&file, 4096).await, Settled::Bytes(b) if b.len() == 2048));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.wasm");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert!(matches!(
                read_settled(&link, 4096).await,
                Settled::Unreadable
            ));
        }
    }
}
