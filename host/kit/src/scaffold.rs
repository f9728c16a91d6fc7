//! `passerelle connector new`: writes a connector crate that builds anywhere (or, with
//! `--lang`, a Python or JavaScript folder: [`super::languages`]) — with a
//! copy of the SDK and its WIT contract (both embedded in this binary, so the author
//! needs nothing else), a manifest, one stream, a unit test and a cassette — and
//! `passerelle connector build`: builds such a crate with the guest toolchain that is
//! here (the same detection as `cargo xtask`).

use std::path::{Path, PathBuf};

use passerelle_guest_toolchain::{release_dir, Toolchain};

pub use super::languages::Lang;
use super::languages::CASSETTE;
use super::KitError;

/// The SDK crate as it ships: every file of `plugins/sdk`, WIT included.
const SDK: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/account.rs",
        include_str!("../../../plugins/sdk/src/account.rs"),
    ),
    (
        "src/clock.rs",
        include_str!("../../../plugins/sdk/src/clock.rs"),
    ),
    (
        "src/drift.rs",
        include_str!("../../../plugins/sdk/src/drift.rs"),
    ),
    (
        "src/emit.rs",
        include_str!("../../../plugins/sdk/src/emit.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../plugins/sdk/src/log.rs"),
    ),
    (
        "src/time.rs",
        include_str!("../../../plugins/sdk/src/time.rs"),
    ),
    (
        "wit/v0.1.0/connector.wit",
        include_str!("../../../plugins/sdk/wit/v0.1.0/connector.wit"),
    ),
    (
        "wit/v0.1.1/connector.wit",
        include_str!("../../../plugins/sdk/wit/v0.1.1/connector.wit"),
    ),
    (
        "wit/v0.1.2/connector.wit",
        include_str!("../../../plugins/sdk/wit/v0.1.2/connector.wit"),
    ),
    (
        "wit/v0.1.3/connector.wit",
        include_str!("../../../plugins/sdk/wit/v0.1.3/connector.wit"),
    ),
];

/// The template, `{{name}}` and `{{crate}}` filled in.
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    ("src/lib.rs", include_str!("template/src.lib.rs.tmpl")),
];

/// Writes connector `name` in `parent/name` (a crate, or a Python or JavaScript folder:
/// [`super::languages`]); its folder.
pub fn new_connector(name: &str, parent: &Path, lang: Lang) -> Result<PathBuf, KitError> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(KitError::Scaffold(format!(
            "`{name}` is not a connector name: lower-case letters, digits and dashes, \
             starting with a letter (it is the manifest's name and the crate's)"
        )));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(KitError::Scaffold(format!(
            "{} already exists: choose another name or --dir",
            dir.display()
        )));
    }
    let crate_name = name.replace('-', "_");
    let files: Vec<(PathBuf, String)> = match lang {
        Lang::Rust => TEMPLATE
            .iter()
            .chain(CASSETTE)
            .map(|(path, text)| {
                let text = text
                    .replace("{{name}}", name)
                    .replace("{{crate}}", &crate_name);
                (PathBuf::from(path), text)
            })
            .chain(
                SDK.iter()
                    .map(|(path, text)| (Path::new("passerelle-sdk").join(path), text.to_string())),
            )
            .collect(),
        other => super::languages::files(other, name),
    };
    for (path, text) in files {
        let target = dir.join(path);
        let parent = target.parent().expect("files are in the crate folder");
        std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&target, text))
            .map_err(|e| KitError::Scaffold(format!("writing {}: {e}", target.display())))?;
    }
    Ok(dir)
}

/// Builds the connector in `dir` (a crate for wasm32-wasip2, or a Python or JavaScript
/// folder); the component's path.
pub fn build_connector(dir: &Path) -> Result<PathBuf, KitError> {
    match super::languages::detect(dir) {
        Some(Lang::Rust) => {}
        Some(other) => return super::languages::build(dir, other),
        None => {
            return Err(KitError::Scaffold(format!(
            "{} holds no connector: a Cargo.toml (Rust), app.py (Python) or app.js (JavaScript)",
            dir.display()
        )))
        }
    }
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| KitError::Scaffold(format!("{}: {e}", manifest.display())))?;
    let package: toml::Table = toml::from_str(&text)
        .map_err(|e| KitError::Scaffold(format!("{}: {e}", manifest.display())))?;
    let name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| KitError::Scaffold(format!("{}: no [package] name", manifest.display())))?
        .replace('-', "_");
    let toolchain = Toolchain::detect().map_err(|e| KitError::Scaffold(e.to_string()))?;
    eprintln!("building {} with {}", dir.display(), toolchain.describe());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = toolchain
        .build_command(dir, &cargo)
        .status()
        .map_err(|e| KitError::Scaffold(format!("running cargo: {e}")))?;
    if !status.success() {
        return Err(KitError::Scaffold(format!(
            "cargo build failed ({status}): see its output above"
        )));
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { dir.join(t) })
        .unwrap_or_else(|| dir.join("target"));
    let component = release_dir(&target_dir).join(format!("{name}.wasm"));
    if !component.is_file() {
        return Err(KitError::Scaffold(format!(
            "cargo succeeded but {} is missing: is the crate a `cdylib`?",
            component.display()
        )));
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use crate::scaffold::*;

    /// Every file of plugins/sdk (its WIT included) is in the copy `connector new`
    /// writes, so the copy builds as the original does.
    #[test]
    fn the_embedded_sdk_is_the_whole_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&root).unwrap();
                    on_disk.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        // What the crate packages (its Cargo.toml's `include`): not its specification,
        // parity scenarios or tests, which stay in the repository.
        on_disk.retain(|p| p == "Cargo.toml" || p.starts_with("src/") || p.starts_with("wit/"));
        on_disk.sort();
        let mut embedded: Vec<String> = SDK.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn names_are_checked_and_folders_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "My", "a_b", "9lives", "x-", "a b"] {
            let e = new_connector(bad, dir.path(), Lang::Rust)
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a connector name"), "{bad}: {e}");
        }
        let made = new_connector("my-platform", dir.path(), Lang::Rust).unwrap();
        let cargo = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-platform\""));
        assert!(made
            .join("passerelle-sdk/wit/v0.1.3/connector.wit")
            .is_file());
        let again = new_connector("my-platform", dir.path(), Lang::Python).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
    }
}
