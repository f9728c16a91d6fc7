//! What the Python and JavaScript builds share: whether a tool runs, the example
//! folders of a language, and the line that names a built component.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// Whether `program --version` runs.
pub fn runs(program: impl AsRef<std::ffi::OsStr>) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The folders of plugins/examples holding `entry` (`app.py`, `app.js`), sorted.
pub fn examples(root: &Path, entry: &str) -> Result<Vec<PathBuf>> {
    let examples = root.join("plugins/examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .with_context(|| format!("reading {}", examples.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.join(entry).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// `examples/NAME.wasm (SIZE KiB)`.
pub fn built(wasm: &Path) -> Result<String> {
    let size = std::fs::metadata(wasm)?.len();
    let name = wasm.file_name().unwrap_or_default().to_string_lossy();
    let folder = wasm
        .parent()
        .and_then(Path::file_name)
        .unwrap_or_default()
        .to_string_lossy();
    Ok(format!("{folder}/{name} ({} KiB)", size / 1024))
}
