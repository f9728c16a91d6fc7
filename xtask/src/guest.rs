//! Building the connectors with the guest toolchain (found by
//! `passerelle-guest-toolchain`, shared with `passerelle connector build`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use passerelle_guest_toolchain::release_dir;
pub use passerelle_guest_toolchain::Toolchain;

/// Second builds of connectors that the hot-swap tests and benchmark install as new
/// versions: (package, features, file name under target/plugins/variants/).
const VARIANTS: &[(&str, &str, &str)] = &[
    (
        "doctolib",
        "start-date-v2",
        "doctolib-0.2.0-start-date-v2.wasm",
    ),
    (
        "doctolib",
        "silently-wrong",
        "doctolib-0.3.0-silently-wrong.wasm",
    ),
    ("testing", "escalate", "testing-0.2.0-escalate.wasm"),
    ("testing", "describe-panic", "testing-describe-panic.wasm"),
    ("testing", "describe-loop", "testing-describe-loop.wasm"),
    (
        "testing",
        "describe-membomb",
        "testing-describe-membomb.wasm",
    ),
    (
        "testing",
        "describe-log-flood",
        "testing-describe-log-flood.wasm",
    ),
    ("testing", "contract-0-1-0", "testing-contract-0.1.0.wasm"),
    ("testing", "contract-0-1-1", "testing-contract-0.1.1.wasm"),
    ("testing", "contract-0-1-2", "testing-contract-0.1.2.wasm"),
];

/// Builds every connector crate of plugins/ and copies the components to
/// target/plugins/, and the [`VARIANTS`] to target/plugins/variants/. Returns
/// target/plugins. Cargo keeps each feature set's artifacts apart, so switching between
/// the variants and the plain builds does not recompile.
pub fn build_all(root: &Path) -> Result<PathBuf> {
    let toolchain = Toolchain::detect_or_install()?;
    let started = Instant::now();
    println!("xtask: building connectors with {}", toolchain.describe());
    let plugins = root.join("plugins");
    let built = release_dir(&plugins.join("target"));
    let out = root.join("target/plugins");
    let variants = out.join("variants");
    std::fs::create_dir_all(&variants)?;
    let mut names = Vec::new();
    for (package, features, file) in VARIANTS {
        let mut cmd = toolchain.build_command(&plugins, crate::cargo_bin());
        cmd.args(["-p", package, "--features", features]);
        crate::status(
            cmd,
            &format!("building the {package} variant with {features}"),
        )?;
        names.push(copy_if_changed(
            &built.join(format!("{package}.wasm")),
            &variants.join(file),
        )?);
    }
    crate::status(
        toolchain.build_command(&plugins, crate::cargo_bin()),
        "building connectors",
    )?;
    for entry in
        std::fs::read_dir(&built).with_context(|| format!("reading {}", built.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && is_member(&plugins, &path) {
            let name = path.file_name().expect("file").to_owned();
            names.push(copy_if_changed(&path, &out.join(&name))?);
        }
    }
    if names.len() == VARIANTS.len() {
        bail!("no components found in {}", built.display());
    }
    names.extend(crate::python::build_all(root, &out)?);
    names.extend(crate::js::build_all(root, &out)?);
    println!(
        "xtask: connectors in {}: {} [{:.1} s]",
        out.display(),
        names.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Whether a built component is one of `plugins/`'s crates (`plugins/<name>/Cargo.toml`
/// for `<name>.wasm`, `-` written `_`). The target folder also caches other builds: the
/// connector kit's test builds a freshly scaffolded connector there.
fn is_member(plugins: &Path, component: &Path) -> bool {
    let Some(stem) = component.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    plugins.join(stem).join("Cargo.toml").is_file()
        || plugins
            .join(stem.replace('_', "-"))
            .join("Cargo.toml")
            .is_file()
}

/// Copies a built component, keeping the destination's mtime when nothing changed.
/// Returns "name (size)".
fn copy_if_changed(from: &Path, to: &Path) -> Result<String> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if std::fs::read(to).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    let name = to
        .strip_prefix(to.parent().and_then(Path::parent).unwrap_or(Path::new("")))
        .unwrap_or(to);
    Ok(format!("{} ({} KiB)", name.display(), bytes.len() / 1024))
}
