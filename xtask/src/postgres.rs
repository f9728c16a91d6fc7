//! Finding (or, on Debian as root, installing) the PostgreSQL the tests run against.
//!
//! Order: `PASSERELLE_TEST_POSTGRES_URL`; else a server on 127.0.0.1:5432 (user
//! postgres, database test, trust auth as on the project's machines); else, when allowed
//! to install and running as root on Debian, the `postgresql` package with a password
//! for the postgres user and a `test` database.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const INSTALLED_URL: &str = "postgres://postgres:passerelle@127.0.0.1:5432/test";

pub fn find(install: bool) -> Result<Option<String>> {
    if let Ok(url) = std::env::var("PASSERELLE_TEST_POSTGRES_URL") {
        return Ok(Some(url));
    }
    if reachable() {
        return Ok(Some(DEFAULT_URL.into()));
    }
    if install
        && std::path::Path::new("/etc/debian_version").exists()
        && passerelle_guest_toolchain::is_root()
    {
        println!(
            "xtask: no PostgreSQL on 127.0.0.1:5432; installing Debian's postgresql for the tests"
        );
        let script = "set -e
            export DEBIAN_FRONTEND=noninteractive
            command -v pg_ctlcluster >/dev/null || { apt-get update -qq; apt-get install -y -qq postgresql; }
            v=$(ls /etc/postgresql | sort -V | tail -1)
            pg_ctlcluster --skip-systemctl-redirect \"$v\" main start || true
            for i in $(seq 1 30); do su postgres -c 'psql -qAtc \"select 1\"' >/dev/null 2>&1 && break; sleep 1; done
            su postgres -c \"psql -qc \\\"ALTER USER postgres PASSWORD 'passerelle'\\\"\"
            su postgres -c \"psql -qAtc \\\"SELECT 1 FROM pg_database WHERE datname='test'\\\" | grep -q 1 || createdb test\"";
        let status = Command::new("bash").arg("-c").arg(script).status()?;
        if status.success() && reachable() {
            return Ok(Some(INSTALLED_URL.into()));
        }
        println!("xtask: installing PostgreSQL did not give a server on 127.0.0.1:5432");
    }
    Ok(None)
}

fn reachable() -> bool {
    let addr: SocketAddr = "127.0.0.1:5432".parse().expect("valid");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// The URL with any password hidden.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
            let user_end = s + 3 + url[s + 3..at].find(':').expect("checked");
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_string(),
    }
}
