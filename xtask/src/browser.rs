//! Finding (or, on Debian as root, installing) the headless Chromium and chromedriver
//! the console's browser test drives.
//!
//! Order: `PASSERELLE_TEST_CHROMEDRIVER`; else `/usr/bin/chromedriver` (Debian's
//! `chromium-driver`); else, when running as root on Debian, `apt-get install chromium
//! chromium-driver`. Without one, the browser test says it is skipped — and in CI fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

const DEBIAN_DRIVER: &str = "/usr/bin/chromedriver";

pub fn find() -> Result<Option<PathBuf>> {
    if let Some(p) = std::env::var_os("PASSERELLE_TEST_CHROMEDRIVER") {
        return Ok(Some(PathBuf::from(p)));
    }
    if Path::new(DEBIAN_DRIVER).exists() {
        return Ok(Some(DEBIAN_DRIVER.into()));
    }
    if Path::new("/etc/debian_version").exists() && passerelle_guest_toolchain::is_root() {
        println!("xtask: no chromedriver; installing Debian's chromium and chromium-driver for the console's browser test");
        let script = "set -e
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq chromium chromium-driver; }";
        let status = Command::new("bash").arg("-c").arg(script).status()?;
        if status.success() && Path::new(DEBIAN_DRIVER).exists() {
            return Ok(Some(DEBIAN_DRIVER.into()));
        }
        println!("xtask: installing chromium-driver did not give {DEBIAN_DRIVER}");
    }
    Ok(None)
}
