//! Finding a wasm32-wasip2 toolchain and building the connectors with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

const TARGET: &str = "wasm32-wasip2";
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "wasi-libc",
    "lld-22",
];

/// The toolchain that builds guests.
pub enum Toolchain {
    /// rustup's toolchain with the wasm32-wasip2 target installed.
    Rustup,
    /// Debian's rustc-web (with build-std), wasi-libc and LLVM's wasm-ld.
    Debian { llvm_bin: PathBuf },
}

impl Toolchain {
    /// Finds a toolchain; with `install`, installs Debian's packages when possible.
    pub fn detect(install: bool) -> Result<Toolchain> {
        if rustup_has_target() {
            return Ok(Toolchain::Rustup);
        }
        if let Some(llvm_bin) = debian_ready() {
            return Ok(Toolchain::Debian { llvm_bin });
        }
        let debian = Path::new("/etc/debian_version").exists();
        if install && debian && is_root() {
            println!(
                "xtask: no wasm32-wasip2 toolchain found; installing Debian's: apt-get install -y {}",
                DEBIAN_PACKAGES.join(" ")
            );
            let mut update = Command::new("apt-get");
            update.arg("update").arg("-qq");
            crate::status(update, "apt-get update")?;
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "-qq"])
                .args(DEBIAN_PACKAGES)
                .env("DEBIAN_FRONTEND", "noninteractive");
            crate::status(cmd, "apt-get install")?;
            if let Some(llvm_bin) = debian_ready() {
                return Ok(Toolchain::Debian { llvm_bin });
            }
            bail!(
                "Debian's packages were installed but the toolchain is still incomplete: {}",
                debian_missing().join(", ")
            );
        }
        bail!(
            "no toolchain can build wasm32-wasip2 connectors.\n\
             Either:\n  rustup target add wasm32-wasip2\n\
             or, on Debian 12+ (as root; `cargo xtask test` does this itself when run as root):\n  \
             apt-get install -y {}\n\
             Missing for the Debian route: {}",
            DEBIAN_PACKAGES.join(" "),
            debian_missing().join(", ")
        )
    }

    pub fn describe(&self) -> String {
        match self {
            Toolchain::Rustup => "rustup (target wasm32-wasip2)".into(),
            Toolchain::Debian { llvm_bin } => format!(
                "Debian rustc-web ({}) with build-std, wasi-libc, {}",
                version("/usr/bin/rustc").unwrap_or_else(|| "rustc ?".into()),
                llvm_bin.display()
            ),
        }
    }

    /// `cargo build --release --target wasm32-wasip2` in `dir`, with this toolchain.
    fn build_command(&self, dir: &Path) -> Command {
        let mut cmd;
        match self {
            Toolchain::Rustup => {
                cmd = Command::new(crate::cargo_bin());
                clean_env(&mut cmd);
                cmd.args(["build", "--release", "--target", TARGET]);
            }
            Toolchain::Debian { llvm_bin } => {
                cmd = Command::new("/usr/bin/cargo");
                clean_env(&mut cmd);
                let path = std::env::var("PATH").unwrap_or_default();
                cmd.env("PATH", format!("{}:/usr/bin:{path}", llvm_bin.display()))
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("RUSTFLAGS", "-L /usr/lib/wasm32-wasi")
                    .args([
                        "build",
                        "--release",
                        "--target",
                        TARGET,
                        "-Zbuild-std=std,panic_abort",
                    ]);
            }
        }
        cmd.current_dir(dir);
        cmd
    }
}

/// Second builds of connectors that the hot-swap tests and benchmark install as new
/// versions: (package, features, file name under target/plugins/variants/).
const VARIANTS: &[(&str, &str, &str)] = &[
    (
        "doctolib",
        "start-date-v2",
        "doctolib-0.2.0-start-date-v2.wasm",
    ),
    ("testing", "escalate", "testing-0.2.0-escalate.wasm"),
    ("testing", "describe-panic", "testing-describe-panic.wasm"),
    ("testing", "contract-0-1-0", "testing-contract-0.1.0.wasm"),
];

/// Builds every connector crate of plugins/ and copies the components to
/// target/plugins/, and the [`VARIANTS`] to target/plugins/variants/. Returns
/// target/plugins. Cargo keeps each feature set's artifacts apart, so switching between
/// the variants and the plain builds does not recompile.
pub fn build_all(root: &Path) -> Result<PathBuf> {
    let toolchain = Toolchain::detect(true)?;
    let started = Instant::now();
    println!("xtask: building connectors with {}", toolchain.describe());
    let plugins = root.join("plugins");
    let built = plugins.join("target").join(TARGET).join("release");
    let out = root.join("target/plugins");
    let variants = out.join("variants");
    std::fs::create_dir_all(&variants)?;
    let mut names = Vec::new();
    for (package, features, file) in VARIANTS {
        let mut cmd = toolchain.build_command(&plugins);
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
    crate::status(toolchain.build_command(&plugins), "building connectors")?;
    for entry in
        std::fs::read_dir(&built).with_context(|| format!("reading {}", built.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let name = path.file_name().expect("file").to_owned();
            names.push(copy_if_changed(&path, &out.join(&name))?);
        }
    }
    if names.len() == VARIANTS.len() {
        bail!("no components found in {}", built.display());
    }
    println!(
        "xtask: connectors in {}: {} [{:.1} s]",
        out.display(),
        names.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
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

/// Cargo sets these for xtask itself; they must not leak into the guest build.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k == "RUSTUP_TOOLCHAIN"
            || k.starts_with("RUSTC")
            || k == "RUSTDOC"
            || k == "RUSTFLAGS"
            || (k.starts_with("CARGO") && k != "CARGO_HOME" && k != "CARGO_NET_OFFLINE")
        {
            cmd.env_remove(&key);
        }
    }
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
}

/// The LLVM bin folder with wasm-ld, newest first.
fn llvm_with_wasm_ld() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let v: u32 = name.strip_prefix("llvm-")?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("wasm-ld").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn debian_missing() -> Vec<String> {
    let mut missing = Vec::new();
    let checks: [(&str, &str); 4] = [
        ("/usr/bin/cargo", "cargo-web (/usr/bin/cargo)"),
        ("/usr/bin/rustc", "rustc-web (/usr/bin/rustc)"),
        (
            "/usr/lib/rustlib/src/rust/library",
            "rust-web-src (/usr/lib/rustlib/src)",
        ),
        (
            "/usr/lib/wasm32-wasi/libc.a",
            "wasi-libc (/usr/lib/wasm32-wasi/libc.a)",
        ),
    ];
    for (path, what) in checks {
        if !Path::new(path).exists() {
            missing.push(what.to_string());
        }
    }
    if llvm_with_wasm_ld().is_none() {
        missing.push("lld-22 (/usr/lib/llvm-22/bin/wasm-ld)".into());
    }
    missing
}

fn debian_ready() -> Option<PathBuf> {
    if debian_missing().is_empty() {
        llvm_with_wasm_ld()
    } else {
        None
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn version(bin: &str) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
