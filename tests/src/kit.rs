//! Running `passerelle connector test` as an author does, and reading its JSON report:
//! shared by the connector kit's tests and each connector's cassette tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::daemon::binary;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A connector's cassette folder (`plugins/<connector>/cassettes/<name>`), after checking
/// that the recordings it points at are there.
pub fn recorded_cassette(connector: &str, name: &str) -> PathBuf {
    let fixtures = repo()
        .join("../shared/fixtures/vitemadose/fixtures")
        .join(connector);
    assert!(
        fixtures.is_dir(),
        "{} is missing: the {connector} cassettes replay ViteMaDose's recorded responses, \
         which CI keeps in ../shared beside the checkout",
        fixtures.display()
    );
    repo()
        .join("plugins")
        .join(connector)
        .join("cassettes")
        .join(name)
}

/// What a `passerelle` command printed, and its exit code.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Its output as JSON (with `--json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs the `passerelle` binary.
pub fn passerelle(args: &[&str]) -> Ran {
    passerelle_with_env(args, &[])
}

/// `passerelle ARGS…` with these environment variables set.
pub fn passerelle_with_env(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run passerelle");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `passerelle --json connector test COMPONENT --cassette CASSETTE EXTRA…`.
pub fn connector_test(component: &Path, cassette: &Path, extra: &[&str]) -> Ran {
    let mut args = vec![
        "--json",
        "connector",
        "test",
        component.to_str().unwrap(),
        "--cassette",
        cassette.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    passerelle(&args)
}

/// `connector test` of a connector's recorded cassette against its expected records:
/// asserts it passed (records, every check, every probe) and returns the report.
pub fn passes_recorded(connector: &str, name: &str) -> Value {
    let dir = recorded_cassette(connector, name);
    let expected = dir.join("expected.json");
    let ran = connector_test(
        &crate::component(connector),
        &dir,
        &["--expect", expected.to_str().unwrap()],
    );
    assert_eq!(
        ran.code, 0,
        "{connector}/{name}: {}\n{}",
        ran.stdout, ran.stderr
    );
    let report = ran.json();
    assert_eq!(report["expected"]["matches"], true, "{connector}/{name}");
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["passed"], true, "{connector}/{name}: {check}");
    }
    report
}

/// The stored slots' (start, end).
pub fn slot_times(report: &Value) -> Vec<(String, Option<String>)> {
    report["records"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["starts_at"].as_str().unwrap().to_string(),
                s["ends_at"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The requests the run made, as `METHOD URL`.
pub fn requests(report: &Value) -> Vec<String> {
    report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request"].as_str().unwrap().to_string())
        .collect()
}

/// Paths the probes found the connector reads (a removed or retyped field ended the run
/// in schema-drift naming it).
pub fn drift_paths(report: &Value) -> Vec<String> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["verdict"].get("drift").is_some())
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

/// The stored slot that starts first (by instant, not by text: offsets differ).
pub fn first_slot(report: &Value) -> Value {
    report["records"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|s| {
            chrono::DateTime::parse_from_rfc3339(s["starts_at"].as_str().unwrap()).unwrap()
        })
        .expect("at least one slot")
        .clone()
}
