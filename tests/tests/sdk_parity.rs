//! The three SDKs are one SDK (plugins/sdk/SPEC.md): the parity scenarios give the same
//! answers in Python and JavaScript (their runners, run here) as in Rust (its runner is
//! the SDK crate's own test, run by `cargo xtask test` with the connectors' unit tests);
//! every helper of the specification has scenarios unless it needs a host, and exists
//! under its name in each SDK.

use std::path::{Path, PathBuf};
use std::process::Command;

use passerelle_tests::kit::repo;
use regex::Regex;

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// A tool the runners need: there, or (outside CI only) a loud skip.
fn tool(what: &str, candidates: &[Option<PathBuf>]) -> Option<PathBuf> {
    for c in candidates.iter().flatten() {
        let found = Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(c.clone());
        }
    }
    assert!(
        !in_ci(),
        "CI runs the {what} SDK's parity scenarios: install {what}"
    );
    eprintln!("SKIPPED: the {what} SDK's parity scenarios ({what} not found)");
    None
}

fn runs(program: &Path, script: &Path) {
    let out = Command::new(program)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("scenarios as the other SDKs"), "{stdout}");
}

#[test]
fn python_answers_every_scenario_as_rust_does() {
    let python = tool(
        "Python",
        &[
            std::env::var_os("PASSERELLE_TEST_PYTHON").map(PathBuf::from),
            Some("python3".into()),
        ],
    );
    if let Some(python) = python {
        runs(&python, &repo().join("plugins/sdk-python/tests/parity.py"));
    }
}

#[test]
fn javascript_answers_every_scenario_as_rust_does() {
    if let Some(node) = tool("Node.js", &[Some("node".into())]) {
        runs(&node, &repo().join("plugins/sdk-js/test/parity.mjs"));
    }
}

/// The specification's rows: (helper, [Rust, Python, JavaScript] names, parity).
fn rows() -> Vec<(String, [Vec<String>; 3], String)> {
    let spec = std::fs::read_to_string(repo().join("plugins/sdk/SPEC.md")).unwrap();
    let ticked = Regex::new(r"`([^`]+)`").unwrap();
    let parenthesised = Regex::new(r"\([^)]*\)").unwrap();
    let names = |cell: &str| -> Vec<String> {
        let cell = parenthesised.replace_all(cell, "");
        ticked
            .captures_iter(&cell)
            .map(|c| {
                let full = c[1].trim_end_matches('!');
                full.rsplit(['.', '#', ':'])
                    .next()
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    };
    spec.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            assert_eq!(cells.len(), 6, "a row of six cells: {l}");
            let helper = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            let parity = cells[5].trim_end_matches(" |").trim().to_string();
            (
                helper,
                [names(cells[1]), names(cells[2]), names(cells[3])],
                parity,
            )
        })
        .collect()
}

#[test]
fn every_helper_of_the_specification_is_in_each_sdk_and_has_scenarios() {
    let rows = rows();
    assert!(rows.len() > 30, "{} rows", rows.len());
    let scenarios: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("plugins/sdk/parity/scenarios.json")).unwrap(),
    )
    .unwrap();
    let covered: Vec<&str> = scenarios["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["helper"].as_str().unwrap())
        .collect();
    let read_all = |dir: &str, ext: &str| -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                text.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
        text
    };
    let sources = [
        read_all("plugins/sdk/src", "rs"),
        read_all("plugins/sdk-python/passerelle_sdk", "py"),
        read_all("plugins/sdk-js", "js"),
    ];
    let defined = [
        // Rust: a function, constant, macro or type of that name.
        r"(fn|const|macro_rules!|struct|type|enum) NAME\b|::NAME\b",
        // Python: a function, class or module-level name.
        r"(def|class) NAME\b|(?m)^NAME\s*=|(?m)^from \S+ import .*\bNAME\b",
        // JavaScript: a method, exported function or constant, or class.
        r"(?m)^\s*(static )?NAME\s*\(|export (const|function|class) NAME\b",
    ];
    let mut problems = Vec::new();
    for (helper, names, parity) in &rows {
        match parity.as_str() {
            "scenarios" if !covered.contains(&helper.as_str()) => {
                // A row is covered by its own scenarios or, for builder steps and the
                // timestamp's text, by the scenarios that use them.
                let used_by = ["http.request", "timestamp.parse"];
                let builder = helper.starts_with("http.") && covered.contains(&used_by[0]);
                let text = helper == "timestamp.to_rfc3339" || helper == "zone";
                if !(builder || text) {
                    problems.push(format!("{helper}: no scenario"));
                }
            }
            "scenarios" | "host" => {}
            other => problems.push(format!(
                "{helper}: parity `{other}` is neither scenarios nor host"
            )),
        }
        for (i, language) in ["Rust", "Python", "JavaScript"].iter().enumerate() {
            assert!(!names[i].is_empty(), "{helper}: no {language} name");
            for name in &names[i] {
                let pattern =
                    Regex::new(&defined[i].replace("NAME", &regex::escape(name))).unwrap();
                if !pattern.is_match(&sources[i]) {
                    problems.push(format!("{helper}: {language} has no `{name}`"));
                }
            }
        }
    }
    for helper in &covered {
        if !rows.iter().any(|(h, _, _)| h == helper) && *helper != "http.request" {
            problems.push(format!(
                "scenarios of `{helper}`, which SPEC.md does not list"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
