//! The toolchain that builds passerelle connectors (wasm32-wasip2 components), found
//! once for `cargo xtask build-plugins` and `passerelle connector build`.
//!
//! Two routes: rustup with the `wasm32-wasip2` target installed, or Debian's packaged
//! toolchain (`rustc-web` with `-Zbuild-std`, `wasi-libc`, LLVM's `wasm-ld`), which
//! builds the standard library for the target itself. [`Toolchain::detect`] says which
//! is here and, when neither is, exactly what is missing for each.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guests' target.
pub const TARGET: &str = "wasm32-wasip2";

/// The Debian packages of the second route.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "wasi-libc",
    "lld-22",
];

/// No toolchain can build guests here.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error(
        "no toolchain can build {TARGET} connectors.\nEither:\n  rustup target add {TARGET}\n\
         or, on Debian 12+ (as root):\n  apt-get install -y {packages}\n\
         Missing for the Debian route: {missing}",
        packages = DEBIAN_PACKAGES.join(" "),
        missing = .missing.join(", ")
    )]
    Missing { missing: Vec<String> },
    #[error("installing Debian's packages failed: {0}")]
    Install(String),
}

/// The toolchain that builds guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's toolchain with the wasm32-wasip2 target installed.
    Rustup,
    /// Debian's rustc-web (with build-std), wasi-libc and LLVM's wasm-ld.
    Debian { llvm_bin: PathBuf },
}

impl Toolchain {
    /// The toolchain on this machine, or what is missing.
    pub fn detect() -> Result<Toolchain, ToolchainError> {
        if rustup_has_target() {
            return Ok(Toolchain::Rustup);
        }
        if let Some(llvm_bin) = debian_ready() {
            return Ok(Toolchain::Debian { llvm_bin });
        }
        Err(ToolchainError::Missing {
            missing: debian_missing(),
        })
    }

    /// [`Self::detect`], installing Debian's packages first when none is here and this
    /// is Debian run as root (what `cargo xtask` does on a fresh machine).
    pub fn detect_or_install() -> Result<Toolchain, ToolchainError> {
        let missing = match Toolchain::detect() {
            Ok(t) => return Ok(t),
            Err(ToolchainError::Missing { missing }) => missing,
            Err(e) => return Err(e),
        };
        if !(Path::new("/etc/debian_version").exists() && is_root()) {
            return Err(ToolchainError::Missing { missing });
        }
        eprintln!(
            "no {TARGET} toolchain found; installing Debian's: apt-get install -y {}",
            DEBIAN_PACKAGES.join(" ")
        );
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(DEBIAN_PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        Toolchain::detect()
    }

    pub fn describe(&self) -> String {
        match self {
            Toolchain::Rustup => format!("rustup (target {TARGET})"),
            Toolchain::Debian { llvm_bin } => format!(
                "Debian rustc-web ({}) with build-std, wasi-libc, {}",
                version("/usr/bin/rustc").unwrap_or_else(|| "rustc ?".into()),
                llvm_bin.display()
            ),
        }
    }

    /// `cargo build --release --target wasm32-wasip2` in `dir`, with this toolchain;
    /// `cargo` is the rustup route's cargo (the caller's own, usually).
    pub fn build_command(&self, dir: &Path, cargo: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd;
        match self {
            Toolchain::Rustup => {
                cmd = Command::new(cargo);
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

/// Where cargo puts a crate's release component: `<target dir>/wasm32-wasip2/release/`.
pub fn release_dir(target_dir: &Path) -> PathBuf {
    target_dir.join(TARGET).join("release")
}

fn run(cmd: &mut Command) -> Result<(), ToolchainError> {
    let status = cmd
        .status()
        .map_err(|e| ToolchainError::Install(format!("{cmd:?}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolchainError::Install(format!("{cmd:?}: {status}")))
    }
}

/// Cargo sets these for the process that runs us; they must not leak into a guest build.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k == "RUSTUP_TOOLCHAIN"
            || k.starts_with("RUSTC")
            || k == "RUSTDOC"
            || k == "RUSTFLAGS"
            || (k.starts_with("CARGO")
                && k != "CARGO_HOME"
                && k != "CARGO_NET_OFFLINE"
                && k != "CARGO_TARGET_DIR"
                && k != "CARGO_BUILD_JOBS")
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

/// What the Debian route lacks here.
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

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn version(bin: &str) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
