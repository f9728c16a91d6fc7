//! `cargo xtask`: the project's one entry point for building and testing.
//!
//! - `doctor`: which guest toolchain (wasm32-wasip2) and PostgreSQL will be used;
//! - `build-plugins`: every connector in plugins/ → `target/plugins/<name>.wasm`;
//! - `test`: lint, build what is needed, run every test (SQLite and PostgreSQL), then
//!   the admin API against its OpenAPI document (schemathesis, [`conformance`]);
//! - `demo`: `passerelle demo` with the built connectors, on target/demo;
//! - `bench`: the benchmarks (sandbox overhead, a run's fixed cost on one centre,
//!   end-to-end sync rate, the daemon at scale, hot swap, several daemons).
//!
//! Guest toolchain: rustup with the wasm32-wasip2 target if present, else Debian's
//! packaged rustc-web route (installed with apt-get when running as root on Debian),
//! else an error saying exactly what to install. Never a silent fallback.

mod browser;
mod conformance;
mod guest;
mod js;
mod ports;
mod postgres;
mod promtool;
mod python;

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
    /// Check the admin API against its OpenAPI document (schemathesis against a live
    /// daemon); `test` runs it too.
    Conformance,
    /// Build what is needed and run `passerelle demo` on target/demo (run it again for
    /// an incremental sync; `cargo xtask demo -- --reset` starts over).
    Demo {
        /// Extra arguments for `passerelle demo` (after --), e.g. `-- --full`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks (sandbox overhead; one centre's fixed cost; end-to-end sync rate; the daemon at scale; hot swap; several daemons; the change feed and webhook delivery; one connector in Rust, Python and JavaScript) and print their figures.
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
            let tc = guest::Toolchain::detect()?;
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
        Cmd::Conformance => {
            let plugins = guest::build_all(&root)?;
            cargo(&root, &["build", "--quiet", "-p", "passerelle", "--bins"])?;
            conformance::run(&root, &root.join("target/debug/passerelle"), &plugins)?;
        }
        Cmd::Demo { args } => {
            let plugins = guest::build_all(&root)?;
            cargo(&root, &["build", "--quiet", "-p", "passerelle"])?;
            demo(&root, &plugins, &args)?;
        }
        Cmd::Bench => {
            let plugins = guest::build_all(&root)?;
            // The scale-out bench runs `passerelle sim` and `passerelle serve` processes.
            cargo(
                &root,
                &[
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "passerelle",
                    "--bin",
                    "passerelle",
                ],
            )?;
            // The PostgreSQL parts need a server: the tests' one, or they say they are
            // left out.
            let postgres = postgres::find(false)?;
            if postgres.is_none() {
                println!("xtask: no PostgreSQL found: the benches' PostgreSQL parts are left out");
            }
            for (package, bench) in [
                ("passerelle", "sandbox"),
                ("passerelle-tests", "centre"),
                ("passerelle-tests", "e2e"),
                ("passerelle-tests", "daemon"),
                ("passerelle-tests", "hot_swap"),
                ("passerelle-tests", "scale_out"),
                ("passerelle-tests", "feed"),
                ("passerelle-tests", "languages"),
                ("passerelle-tests", "console"),
            ] {
                let mut cmd = Command::new(cargo_bin());
                cmd.current_dir(&root)
                    .args(["bench", "-p", package, "--bench", bench])
                    .env("PASSERELLE_PLUGINS_DIR", &plugins);
                if let Some(url) = &postgres {
                    cmd.env("PASSERELLE_TEST_POSTGRES_URL", url);
                }
                status(cmd, "cargo bench")?;
            }
        }
    }
    Ok(())
}

/// Prints how long each phase of `cargo xtask test` took, as it ends, and the split at
/// the end (where CI's time goes).
struct Phases {
    started: Instant,
    last: Instant,
    done: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Phases {
        let now = Instant::now();
        Phases {
            started: now,
            last: now,
            done: Vec::new(),
        }
    }

    fn end(&mut self, name: &'static str) {
        let secs = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        println!("xtask: {name}: {secs:.0} s");
        self.done.push((name, secs));
    }

    fn summary(&self) {
        let total = self.started.elapsed().as_secs_f64();
        println!("xtask: all tests passed in {total:.0} s:");
        for (name, secs) in &self.done {
            println!("xtask:   {secs:>6.0} s  {name}");
        }
    }
}

/// Links the host's binaries with LLVM's `lld` when it is installed (the Debian guest
/// route installs `lld-22`): the workspace links about thirty large test, bench and
/// program binaries, and `lld` links them several times faster than the system's `ld`.
/// Nothing changes when it is absent, or when the flags are set already.
fn use_lld_when_present() {
    const VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS";
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) || std::env::var_os(VAR).is_some() {
        return;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ld.lld"))
            .find(|p| p.is_file())
    });
    let packaged = || {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
            .map(|e| e.path().join("bin/ld.lld"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    };
    let Some(lld) = on_path.or_else(packaged) else {
        return;
    };
    let dir = lld.parent().expect("a file has a directory");
    println!("xtask: linking the host's binaries with {}", lld.display());
    // Inherited by every cargo this process starts: one set of flags for all of them, so
    // their builds share what they compile.
    std::env::set_var(
        VAR,
        format!("-C link-arg=-fuse-ld=lld -C link-arg=-B{}", dir.display()),
    );
}

fn test(root: &Path, no_postgres: bool, no_lint: bool, cargo_args: &[String]) -> Result<()> {
    let mut phases = Phases::new();
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
    let chromedriver = browser::find()?;
    match &chromedriver {
        Some(path) => println!("xtask: chromedriver for the browser test: {}", path.display()),
        None if in_ci => bail!(
            "no chromedriver: CI runs the console's browser test (Debian: apt-get install chromium chromium-driver, or set PASSERELLE_TEST_CHROMEDRIVER)"
        ),
        None => println!(
            "xtask: no chromedriver: the console's browser test will be SKIPPED (apt-get install chromium chromium-driver)"
        ),
    }
    if !no_lint {
        println!("xtask: checking formatting");
        cargo(root, &["fmt", "--all", "--check"])?;
        cargo(&root.join("plugins"), &["fmt", "--all", "--check"])?;
    }
    match promtool::find(root)? {
        Some(promtool) => promtool::check(root, &promtool)?,
        None if in_ci => bail!(
            "no promtool: CI checks the alerting rules (Debian: apt-get download prometheus, or set PASSERELLE_PROMTOOL)"
        ),
        None => println!(
            "xtask: no promtool: the alerting rules are NOT checked (set PASSERELLE_PROMTOOL, or on Debian let xtask unpack the prometheus package)"
        ),
    }
    let plugins = guest::build_all(root)?;
    let test_python = python::test_python(root)?;
    phases.end("toolchains, formatting, connectors (wasm32)");
    // After the guest toolchain's packages: Debian's route brings lld.
    use_lld_when_present();
    // Clippy lints while building: its driver compiles the workspace's crates (lints
    // then code), so the dependencies are compiled once, for the tests, instead of once
    // more in `cargo clippy`'s check mode. `-D warnings` everywhere.
    let lint = if no_lint { None } else { Some(clippy_env()?) };
    let with_lint = |cmd: &mut Command| {
        if let Some(env) = &lint {
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
        }
    };
    println!(
        "xtask: connectors' unit tests (native){}",
        if no_lint { "" } else { ", with clippy" }
    );
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root.join("plugins")).args([
        "test",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--exclude",
        "testing",
    ]);
    with_lint(&mut cmd);
    status(cmd, "connectors' unit tests")?;
    if !no_lint {
        // `testing` (the hostile connector) has no tests but is linted like the others.
        let mut cmd = Command::new(cargo_bin());
        cmd.current_dir(root.join("plugins")).args([
            "build",
            "--quiet",
            "-p",
            "testing",
            "--all-targets",
        ]);
        with_lint(&mut cmd);
        status(cmd, "clippy on the testing connector")?;
    }
    phases.end("connectors' unit tests (native)");
    println!(
        "xtask: building the host, the simulator and the tests{}",
        if no_lint { "" } else { ", with clippy" }
    );
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root)
        .args(["build", "--quiet", "--workspace", "--all-targets"]);
    with_lint(&mut cmd);
    status(cmd, "building the workspace")?;
    phases.end("building the host, simulator and tests");
    println!("xtask: host and end-to-end tests");
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(cargo_args)
        .env("PASSERELLE_PLUGINS_DIR", &plugins)
        .env("PASSERELLE_TEST_PYTHON", &test_python);
    if let Some(path) = &chromedriver {
        cmd.env("PASSERELLE_TEST_CHROMEDRIVER", path);
    }
    with_lint(&mut cmd);
    match &pg {
        Some(url) => {
            cmd.env("PASSERELLE_TEST_POSTGRES_URL", url);
        }
        None => {
            cmd.env("PASSERELLE_SKIP_POSTGRES", "1");
        }
    }
    status(cmd, "cargo test")?;
    phases.end("host and end-to-end tests");
    let binary = production_binary(root, &with_lint)?;
    phases.end("production binary");
    conformance::run(root, &binary, &plugins)?;
    phases.end("API conformance");
    phases.summary();
    Ok(())
}

/// The production build: the host without its `dev` feature (no simulator linked, no
/// failpoints), linted, moved to `target/production/passerelle`. Its dependencies are
/// built with the same features as the test build's (kept so: DEVELOPERS.md, "One set of
/// features"), so only the host and `fail` compile again. Cargo puts the binary at
/// `target/debug/passerelle` and does not put the test build's back there when that one is
/// still fresh, so the test build's is set aside and restored: the tests and
/// `cargo xtask demo` keep a binary with the `dev` feature.
fn production_binary(root: &Path, with_lint: &dyn Fn(&mut Command)) -> Result<PathBuf> {
    println!("xtask: building the production binary (no dev feature)");
    let debug = root.join("target/debug");
    let uplifted = debug.join("passerelle");
    let aside = debug.join("passerelle.tests");
    let had_one = uplifted.exists();
    if had_one {
        std::fs::rename(&uplifted, &aside).context("setting the test build's binary aside")?;
    }
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "passerelle",
        "--no-default-features",
        "--bins",
    ]);
    with_lint(&mut cmd);
    let built = status(cmd, "building the production binary");
    let production = root.join("target/production");
    let moved = built.and_then(|()| {
        std::fs::create_dir_all(&production).context("creating target/production")?;
        std::fs::rename(&uplifted, production.join("passerelle"))
            .context("moving the production binary to target/production")
    });
    if had_one {
        std::fs::rename(&aside, &uplifted).context("restoring the test build's binary")?;
    }
    moved?;
    Ok(production.join("passerelle"))
}

/// `passerelle demo` with the freshly built connectors, on `target/demo` (kept between
/// demos: a second demo syncs incrementally and finds only the simulator's new changes).
fn demo(root: &Path, plugins: &Path, args: &[String]) -> Result<()> {
    let bin = root.join("target/debug/passerelle");
    let mut cmd = Command::new(&bin);
    cmd.current_dir(root)
        .arg("--data-dir")
        .arg(root.join("target/demo"))
        .arg("demo")
        .arg("--plugins-dir")
        .arg(plugins)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    status(cmd, "passerelle demo")
}

/// The environment that makes cargo compile the workspace's crates with clippy's
/// driver and `-D warnings` (what `cargo clippy` sets, for a build instead of a check).
/// The driver is the one beside `cargo`/`rustc` on PATH (rustup's proxy picks the
/// toolchain).
fn clippy_env() -> Result<Vec<(&'static str, String)>> {
    let ok = Command::new("clippy-driver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "clippy-driver not found: install clippy (`rustup component add clippy`), \
             or run `cargo xtask test --no-lint`"
        );
    }
    Ok(vec![
        ("RUSTC_WORKSPACE_WRAPPER", "clippy-driver".into()),
        // cargo-clippy's own way of passing lint flags to the driver.
        (
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__".into(),
        ),
    ])
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
