//! The admin API against its own OpenAPI document: `passerelle serve` on a scratch data
//! directory (a connector, a practice, an account), then schemathesis (PyPI, pinned,
//! in a virtual environment under target/) with every check — server errors, statuses
//! and headers the document does not list, responses that do not match their schemas,
//! schema-valid input refused, schema-invalid input accepted — over generated requests
//! from a fixed seed (`PASSERELLE_CONFORMANCE_SEED` to explore others). The run's
//! settings and the generators of the document's custom formats are in
//! tests/schemathesis/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const SCHEMATHESIS: &str = "schemathesis==4.32.5";
const TOKEN: &str = "conformance-token-0123456789abcdef";

/// Runs the conformance check; `binary` is the built `passerelle`.
pub fn run(root: &Path, binary: &Path, plugins: &Path) -> Result<()> {
    let started = Instant::now();
    let st = schemathesis(root)?;
    let dir = root.join("target/conformance");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).context("creating target/conformance")?;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        // Schemathesis presents wrong tokens on purpose (is authentication enforced?):
        // allowed plenty, so its valid requests are not held back.
        format!("[daemon]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nwrong_tokens_per_minute = 1000000\n"),
    )?;
    let passerelle = |args: &[&str]| {
        let mut cmd = Command::new(binary);
        cmd.arg("--data-dir")
            .arg(&dir)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("PASSERELLE_DATABASE_URL")
            .env_remove("PASSERELLE_SERVER");
        cmd
    };
    let component = plugins.join("doctolib.wasm");
    crate::status(
        passerelle(&["plugins", "install", component.to_str().context("path")?]),
        "passerelle plugins install",
    )?;
    crate::status(
        passerelle(&["practices", "add", "p001", "--name", "Cabinet"]),
        "passerelle practices add",
    )?;
    crate::status(
        passerelle(&[
            "accounts",
            "add",
            "p001-cabinet",
            "--practice",
            "p001",
            "--connector",
            "doctolib",
            "--setting",
            "centre=centre-basic",
        ]),
        "passerelle accounts add",
    )?;
    let daemon = Daemon(
        passerelle(&["serve"])
            .stdout(std::fs::File::create(dir.join("daemon.log"))?)
            .stderr(std::fs::File::create(dir.join("daemon.err"))?)
            .spawn()
            .context("starting passerelle serve")?,
    );
    let address = wait_for_address(&dir.join("api-address"))?;
    // A `read` token too: what it may not do must be answered as documented (403).
    let created = passerelle(&[
        "--json",
        "tokens",
        "create",
        "conformance-read",
        "--scope",
        "read",
    ])
    .output()
    .context("passerelle tokens create")?;
    anyhow::ensure!(
        created.status.success(),
        "passerelle tokens create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let read: serde_json::Value =
        serde_json::from_slice(&created.stdout).context("tokens create --json")?;
    let read = read["secret"]
        .as_str()
        .context("the read token")?
        .to_string();
    let seed = std::env::var("PASSERELLE_CONFORMANCE_SEED").unwrap_or_else(|_| "1".into());
    let mut result = Ok(());
    for (who, token) in [("admin", TOKEN), ("read", read.as_str())] {
        println!("xtask: API conformance with the {who} token (schemathesis, seed {seed}) against http://{address}");
        let mut cmd = Command::new(&st);
        cmd.current_dir(root.join("tests/schemathesis"))
            .arg("run")
            .arg(format!("http://{address}/openapi.json"))
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "50", "--seed", &seed])
            .args(["--no-color"]);
        result = crate::status(cmd, &format!("schemathesis ({who} token)"));
        if result.is_err() {
            break;
        }
    }
    drop(daemon);
    result.with_context(|| {
        format!(
            "the admin API does not match its OpenAPI document (the daemon's log: {})",
            dir.join("daemon.err").display()
        )
    })?;
    println!(
        "xtask: API conformance passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The daemon, stopped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon's API address, once it listens.
fn wait_for_address(file: &Path) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let address = text.trim().trim_start_matches("http://").to_string();
            if !address.is_empty() && std::net::TcpStream::connect(&address).is_ok() {
                return Ok(address);
            }
        }
        if Instant::now() > deadline {
            bail!("passerelle serve did not start listening within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `st` command of a virtual environment under target/ with schemathesis, made
/// (from PyPI) on first use.
fn schemathesis(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/schemathesis-venv");
    let st = venv.join("bin/st");
    let marker = venv.join(".installed");
    if st.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(SCHEMATHESIS) {
        return Ok(st);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .context(
            "the API conformance check needs Python 3 with venv and pip (Debian: apt-get install python3-venv python3-pip)",
        )?;
    println!("xtask: installing {SCHEMATHESIS} into {}", venv.display());
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]).arg(&venv);
    crate::status(cmd, "python3 -m venv")
        .context("creating a virtual environment (Debian: apt-get install python3-venv)")?;
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SCHEMATHESIS,
    ]);
    crate::status(cmd, "pip install schemathesis")?;
    std::fs::write(&marker, SCHEMATHESIS)?;
    Ok(st)
}
