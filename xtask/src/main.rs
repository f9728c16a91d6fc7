//! `cargo xtask`: the project's one entry point for building and testing.
//!
//! - `doctor`: which guest toolchain (wasm32-wasip2) and PostgreSQL will be used;
//! - `build-plugins`: every connector in plugins/ → `target/plugins/<name>.wasm`;
//! - `test`: lint, build what is needed, run every test (SQLite and PostgreSQL);
//! - `demo`: the demo, on a fresh data directory;
//! - `bench`: the sandbox benchmark.
//!
//! Guest toolchain: rustup with the wasm32-wasip2 target if present, else Debian's
//! packaged rustc-web route (installed with apt-get when running as root on Debian),
//! else an error saying exactly what to install. Never a silent fallback.

mod guest;
mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, test, demo and bench passerelle")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show which guest toolchain and PostgreSQL the other commands would use.
    Doctor,
    /// Build every connector to target/plugins/<name>.wasm.
    BuildPlugins,
    /// Check formatting and lints, build host and connectors, run every test.
    Test {
        /// Run without PostgreSQL (its tests are skipped, and say so). Refused in CI.
        #[arg(long)]
        no_postgres: bool,
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for `cargo test` (after --).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the demo in a fresh data directory (target/demo).
    Demo,
    /// Run the sandbox benchmark and print its figures.
    Bench,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    match cli.command {
        Cmd::Doctor => {
            let tc = guest::Toolchain::detect(false)?;
            println!("guest toolchain: {}", tc.describe());
            match postgres::find(false)? {
                Some(url) => println!("postgresql: {}", postgres::redact(&url)),
                None => println!("postgresql: not found"),
            }
        }
        Cmd::BuildPlugins => {
            guest::build_all(&root)?;
        }
        Cmd::Test {
            no_postgres,
            no_lint,
            cargo_args,
        } => test(&root, no_postgres, no_lint, &cargo_args)?,
        Cmd::Demo => {
            let plugins = guest::build_all(&root)?;
            cargo(&root, &["build", "--quiet", "-p", "passerelle"])?;
            demo(&root, &plugins)?;
        }
        Cmd::Bench => {
            let plugins = guest::build_all(&root)?;
            let mut cmd = Command::new(cargo_bin());
            cmd.current_dir(&root)
                .args(["bench", "-p", "passerelle", "--bench", "sandbox"])
                .env("PASSERELLE_PLUGINS_DIR", &plugins);
            status(cmd, "cargo bench")?;
        }
    }
    Ok(())
}

fn test(root: &Path, no_postgres: bool, no_lint: bool, cargo_args: &[String]) -> Result<()> {
    let started = Instant::now();
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    if no_postgres && in_ci {
        bail!("--no-postgres is refused in CI: PostgreSQL tests must run there");
    }
    let pg = if no_postgres {
        println!("xtask: --no-postgres: PostgreSQL tests will be SKIPPED (each says so)");
        None
    } else {
        let url = postgres::find(true)?.context(
            "no PostgreSQL found. Set PASSERELLE_TEST_POSTGRES_URL=postgres://USER[:PASS]@HOST:PORT/DB, \
             start one on 127.0.0.1:5432 (user postgres, database test), \
             or run `cargo xtask test --no-postgres` to skip its tests outside CI",
        )?;
        println!("xtask: PostgreSQL for tests: {}", postgres::redact(&url));
        Some(url)
    };
    if !no_lint {
        println!("xtask: checking formatting");
        cargo(root, &["fmt", "--all", "--check"])?;
        cargo(&root.join("plugins"), &["fmt", "--all", "--check"])?;
    }
    let plugins = guest::build_all(root)?;
    if !no_lint {
        println!("xtask: clippy");
        cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    println!("xtask: SDK unit tests (native)");
    cargo(
        &root.join("plugins"),
        &["test", "--quiet", "-p", "passerelle-sdk"],
    )?;
    println!("xtask: host and end-to-end tests");
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(cargo_args)
        .env("PASSERELLE_PLUGINS_DIR", &plugins);
    match &pg {
        Some(url) => {
            cmd.env("PASSERELLE_TEST_POSTGRES_URL", url);
        }
        None => {
            cmd.env("PASSERELLE_SKIP_POSTGRES", "1");
        }
    }
    status(cmd, "cargo test")?;
    println!(
        "xtask: all tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The demo until the simulator and real connectors land: the testing connector, in a
/// fresh data directory, driven through the real CLI.
fn demo(root: &Path, plugins: &Path) -> Result<()> {
    let data = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&data);
    let bin = root.join("target/debug/passerelle");
    let p = |args: &[&str]| -> Result<()> {
        println!("\n$ passerelle {}", args.join(" "));
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .env("PASSERELLE_DATA_DIR", &data)
            .env("RUST_LOG", "warn");
        status(cmd, "passerelle")
    };
    let wasm = plugins.join("testing.wasm");
    p(&["plugins", "install", &wasm.to_string_lossy()])?;
    p(&[
        "practices",
        "add",
        "cabinet-dupre",
        "--name",
        "Cabinet Dupré",
    ])?;
    p(&[
        "accounts",
        "add",
        "cabinet-dupre-main",
        "--practice",
        "cabinet-dupre",
        "--connector",
        "testing",
        "--setting",
        "scenario=emit",
        "--setting",
        "count=40",
        "--setting",
        "checkpoint_every=10",
    ])?;
    p(&["sync", "cabinet-dupre", "--full"])?;
    p(&["sync", "cabinet-dupre"])?;
    p(&["runs", "--practice", "cabinet-dupre"])?;
    println!(
        "\nData directory: {}\nDatabase: {}\nLook around: PASSERELLE_DATA_DIR={} {} runs --json",
        data.display(),
        data.join("passerelle.db").display(),
        data.display(),
        bin.display()
    );
    Ok(())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(dir: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(dir).args(args);
    status(cmd, &format!("cargo {}", args.join(" ")))
}

pub(crate) fn status(mut cmd: Command, what: &str) -> Result<()> {
    let st = cmd.status().with_context(|| format!("starting {what}"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}
