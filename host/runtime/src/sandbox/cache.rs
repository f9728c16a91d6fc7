//! Compiling components, with precompiled artifacts cached on disk.
//!
//! Artifacts live in `<cache>/<engine key>/<sha256>.cwasm`. The engine key covers the
//! wasmtime version and the engine's compilation settings, so an upgrade or a config
//! change never loads a stale artifact. Files are written to a temporary name and
//! renamed, so a crash never leaves a half-written artifact under a real name.
//!
//! Every loaded component also gets its linear-memory images now, not at its first
//! instantiation: see [`prepare_images`].

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The folder of artifacts compatible with `engine`.
pub fn engine_dir(root: &Path, engine: &Engine) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    // The compatibility hash covers the wasmtime version and the compilation settings.
    root.join(format!("engine-{:016x}", hasher.finish()))
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from a cached precompiled artifact.
    Cache,
    /// Compiled now (and cached, when a cache folder is set).
    Compiled,
}

/// A freshly compiled artifact not yet on disk: kept only once the candidate proved to
/// be a connector, so a rejected one leaves nothing behind.
pub struct Artifact {
    dir: PathBuf,
    file: PathBuf,
    serialized: Vec<u8>,
}

impl Artifact {
    /// Writes the artifact to the cache. Failing only costs a later compile, so it is
    /// logged, not returned.
    pub fn keep(self) {
        if let Err(e) = write_artifact(&self.dir, &self.file, &self.serialized) {
            tracing::warn!(file = %self.file.display(), "cannot cache the compiled component: {e:#}");
        }
    }
}

/// Compiles `bytes` or loads its cached artifact; a fresh compile comes with the
/// artifact to [`Artifact::keep`] when the component is accepted.
pub fn load(
    engine: &Engine,
    bytes: &[u8],
    sha256: &str,
    cache: Option<&Path>,
) -> Result<(Component, Origin, Option<Artifact>)> {
    let Some(root) = cache else {
        return Ok((compile(engine, bytes)?, Origin::Compiled, None));
    };
    let dir = engine_dir(root, engine);
    let file = dir.join(format!("{sha256}.cwasm"));
    if file.exists() {
        // SAFETY: the artifact was produced by `precompile_component` of an engine with
        // the same compatibility key, and lives in the operator's private data dir.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(c) => return Ok((c, Origin::Cache, None)),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "discarding unusable cached artifact")
            }
        }
    }
    let serialized = engine
        .precompile_component(bytes)
        .map_err(anyhow::Error::from)?;
    // SAFETY: just produced by this engine.
    let component =
        unsafe { Component::deserialize(engine, &serialized).map_err(anyhow::Error::from)? };
    let artifact = Artifact {
        dir,
        file,
        serialized,
    };
    Ok((component, Origin::Compiled, Some(artifact)))
}

/// How many times [`prepare_images`] asks the kernel to seal an image it found busy.
const SEAL_ATTEMPTS: u32 = 5;

/// Builds the component's copy-on-write memory images once, at load.
///
/// A component compiled in memory (not mapped from a cached artifact) gets its images
/// as sealed memfds. Linux refuses the write seal (`EBUSY`) while any page of the
/// fresh memfd is still referenced by someone else (page-cache batching, compaction),
/// after waiting about 150 ms; under load this was seen once in CI, on an 18 MB
/// component, as a failed instantiation. Built here, such a refusal is retried a few
/// times with a pause, instead of failing a run; any other error, or a refusal that
/// lasts, is returned.
pub fn prepare_images(component: &Component) -> Result<()> {
    let mut attempt = 1;
    loop {
        match component.initialize_copy_on_write_image() {
            Ok(()) => return Ok(()),
            Err(e) if attempt < SEAL_ATTEMPTS && is_busy(&e) => {
                tracing::warn!(
                    attempt,
                    "the kernel refused to seal a memory image for now ({e:#}); trying again"
                );
                std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
                attempt += 1;
            }
            Err(e) => {
                return Err(anyhow::Error::from(e))
                    .context("preparing the component's memory images")
            }
        }
    }
}

/// Whether the error is the kernel refusing to seal an image (decided on memfd's typed
/// error, whatever the errno).
fn is_busy(e: &wasmtime::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<memfd::Error>(),
            Some(memfd::Error::AddSeals(_))
        )
    })
}

/// Writes an artifact under a temporary name of its own (several runs of one process
/// may compile the same component at once) and renames it into place.
fn write_artifact(dir: &Path, file: &Path, serialized: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(serialized)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(file)
        .with_context(|| format!("renaming to {}", file.display()))?;
    Ok(())
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes).map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use crate::sandbox::cache::is_busy;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_refused_seal_is_retried() {
        let busy =
            wasmtime::Error::new(memfd::Error::AddSeals(Error::from(ErrorKind::ResourceBusy)));
        assert!(is_busy(&busy));
        assert!(is_busy(&busy.context("instantiating")));
        let create =
            wasmtime::Error::new(memfd::Error::Create(Error::from(ErrorKind::ResourceBusy)));
        assert!(!is_busy(&create));
        // Decided on the type, never on the words.
        assert!(!is_busy(&wasmtime::Error::msg(
            "cannot add seals to the memfd"
        )));
    }
}
