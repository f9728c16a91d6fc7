//! The alerting rules' checks (`deploy/prometheus`): `promtool check rules` and
//! `promtool test rules` on their unit tests. promtool is found as
//! `PASSERELLE_PROMTOOL`, `promtool` on PATH, or Debian's `prometheus` package unpacked
//! under `target/toolchains/prometheus` (`apt-get download` and `dpkg-deb -x`: nothing is
//! installed or started). Without one the rules are not checked — said, and in CI a
//! failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// promtool, if there is one or Debian's package can be unpacked.
pub fn find(root: &Path) -> Result<Option<PathBuf>> {
    if let Some(p) = std::env::var_os("PASSERELLE_PROMTOOL") {
        return Ok(Some(PathBuf::from(p)));
    }
    if runs(Path::new("promtool")) {
        return Ok(Some("promtool".into()));
    }
    let dir = root.join("target/toolchains/prometheus");
    let unpacked = dir.join("usr/bin/promtool");
    if runs(&unpacked) {
        return Ok(Some(unpacked));
    }
    if !Path::new("/etc/debian_version").exists() {
        return Ok(None);
    }
    println!("xtask: unpacking Debian's prometheus package for promtool (nothing installed)");
    std::fs::create_dir_all(&dir).context("creating target/toolchains/prometheus")?;
    let script = "set -e
        rm -f prometheus_*.deb
        apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }
        dpkg-deb -x prometheus_*.deb .
        rm -f prometheus_*.deb";
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .status()
        .context("apt-get download prometheus")?;
    Ok((status.success() && runs(&unpacked)).then_some(unpacked))
}

/// Checks the rules and runs their unit tests.
pub fn check(root: &Path, promtool: &Path) -> Result<()> {
    let dir = root.join("deploy/prometheus");
    for (args, what) in [
        (
            ["check", "rules", "passerelle.rules.yml"],
            "promtool check rules",
        ),
        (
            ["test", "rules", "passerelle.rules.test.yml"],
            "promtool test rules",
        ),
    ] {
        let out = Command::new(promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .with_context(|| format!("running {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    println!("xtask: alerting rules checked and their unit tests pass (promtool)");
    Ok(())
}
