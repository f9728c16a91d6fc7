//! Python connectors, built with componentize-py: the tool on PATH, or the pinned one
//! this installs into `target/toolchains/python` (a virtual environment: needs only
//! `python3` with `venv` and `pip`, and PyPI). Every `plugins/examples/*-python`
//! (an `app.py` using `plugins/sdk-python`) becomes
//! `target/plugins/examples/<name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ports::runs;

/// The componentize-py release the SDK and examples are built and tested with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The contract the Python SDK targets.
const WIT: &str = "wit/v0.1.3";

/// The `prometheus_client` release whose two parsers (Prometheus text, OpenMetrics) read
/// the daemon's `/metrics` in the tests: what many exporters and scripts use.
const PROMETHEUS_CLIENT: &str = "prometheus-client==0.21.1";

/// A Python with `prometheus_client`, for the metrics test (`PASSERELLE_TEST_PYTHON`):
/// the virtual environment of `target/toolchains/python`, created if missing.
pub fn test_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/toolchains/python");
    let python = venv.join("bin/python");
    let has = |p: &Path| {
        Command::new(p)
            .args(["-c", "import prometheus_client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&python) {
        return Ok(python);
    }
    if !runs(&python) {
        let system = ["python3", "python"]
            .into_iter()
            .find(|p| runs(p))
            .context("the metrics test needs python3 (with venv and pip)")?;
        crate::status(
            {
                let mut c = Command::new(system);
                c.args(["-m", "venv"]).arg(&venv);
                c
            },
            "creating a Python virtual environment (Debian: apt-get install python3-venv)",
        )?;
    }
    println!(
        "xtask: installing {PROMETHEUS_CLIENT} into {}",
        venv.display()
    );
    crate::status(
        {
            let mut c = Command::new(venv.join("bin/pip"));
            c.args(["install", "--quiet", PROMETHEUS_CLIENT]);
            c
        },
        &format!("pip install {PROMETHEUS_CLIENT}"),
    )?;
    if !has(&python) {
        bail!(
            "{} cannot import prometheus_client after installing it",
            python.display()
        );
    }
    Ok(python)
}

/// componentize-py, found or installed.
fn componentize_py(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/toolchains/python");
    let installed = venv.join("bin/componentize-py");
    if runs(&installed) {
        return Ok(installed);
    }
    if runs("componentize-py") {
        return Ok(PathBuf::from("componentize-py"));
    }
    println!(
        "xtask: installing {COMPONENTIZE_PY} into {}",
        venv.display()
    );
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| runs(p))
        .context(
            "the Python connectors need componentize-py: install python3 (with venv and pip) \
             or put componentize-py on PATH",
        )?;
    crate::status(
        {
            let mut c = Command::new(python);
            c.args(["-m", "venv"]).arg(&venv);
            c
        },
        "creating a Python virtual environment (Debian: apt-get install python3-venv)",
    )?;
    crate::status(
        {
            let mut c = Command::new(venv.join("bin/pip"));
            c.args(["install", "--quiet", COMPONENTIZE_PY]);
            c
        },
        &format!("pip install {COMPONENTIZE_PY}"),
    )?;
    if !runs(&installed) {
        bail!("{} does not run after installing it", installed.display());
    }
    Ok(installed)
}

/// Builds every Python example into `out/examples/`; their names and sizes.
pub fn build_all(root: &Path, out: &Path) -> Result<Vec<String>> {
    let tool = componentize_py(root)?;
    let target = out.join("examples");
    std::fs::create_dir_all(&target)?;
    let mut built = Vec::new();
    let dirs = crate::ports::examples(root, "app.py")?;
    for dir in dirs {
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let wasm = target.join(format!("{name}.wasm"));
        let mut cmd = Command::new(&tool);
        cmd.current_dir(root)
            .args(["-d", WIT, "-w", "connector", "componentize", "-p"])
            .arg(root.join("plugins/sdk-python"))
            .arg("-p")
            .arg(&dir)
            .arg("app")
            .arg("-o")
            .arg(&wasm);
        crate::status(cmd, &format!("building {name} with componentize-py"))?;
        built.push(crate::ports::built(&wasm)?);
    }
    Ok(built)
}
