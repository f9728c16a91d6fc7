//! `passerelle connector new --lang python|js` and building such a folder: the Python
//! and JavaScript templates (with copies of their SDK and of the WIT contract, all
//! embedded in this binary) and their builds (componentize-py on PATH; componentize-js
//! from the folder's own `npm install`). The Rust template is [`super::scaffold`]'s.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::KitError;

/// The contract the Python and JavaScript SDKs implement.
const WIT: (&str, &str) = (
    "wit/connector.wit",
    include_str!("../../../wit/v0.1.3/connector.wit"),
);

/// The example cassette every template ships, whatever the language.
pub(super) const CASSETTE: &[(&str, &str)] = &[
    (
        "cassettes/example/cassette.toml",
        include_str!("template/cassettes/example/cassette.toml.tmpl"),
    ),
    (
        "cassettes/example/slots.json",
        include_str!("template/cassettes/example/slots.json"),
    ),
    (
        "cassettes/example/expected.json",
        include_str!("template/cassettes/example/expected.json"),
    ),
];

const PYTHON: &[(&str, &str)] = &[
    ("app.py", include_str!("template-python/app.py.tmpl")),
    ("README.md", include_str!("template-python/README.md.tmpl")),
    (".gitignore", include_str!("template-python/gitignore.tmpl")),
    (
        "passerelle_sdk/__init__.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/__init__.py"),
    ),
    (
        "passerelle_sdk/account.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/account.py"),
    ),
    (
        "passerelle_sdk/errors.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/errors.py"),
    ),
    (
        "passerelle_sdk/http.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/http.py"),
    ),
    (
        "passerelle_sdk/reader.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/reader.py"),
    ),
    (
        "passerelle_sdk/emit.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/emit.py"),
    ),
    (
        "passerelle_sdk/log.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/log.py"),
    ),
    (
        "passerelle_sdk/time.py",
        include_str!("../../../plugins/sdk-python/passerelle_sdk/time.py"),
    ),
];

const JS: &[(&str, &str)] = &[
    ("app.js", include_str!("template-js/app.js.tmpl")),
    (
        "package.json",
        include_str!("template-js/package.json.tmpl"),
    ),
    ("build.mjs", include_str!("template-js/build.mjs")),
    ("README.md", include_str!("template-js/README.md.tmpl")),
    (".gitignore", include_str!("template-js/gitignore.tmpl")),
    (
        "passerelle-sdk.js",
        include_str!("../../../plugins/sdk-js/passerelle-sdk.js"),
    ),
];

/// A connector's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// The files of a Python or JavaScript connector named `name`.
pub fn files(lang: Lang, name: &str) -> Vec<(PathBuf, String)> {
    let own = match lang {
        Lang::Rust => unreachable!("the Rust template is scaffold's"),
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    own.iter()
        .chain(CASSETTE)
        .chain(std::iter::once(&WIT))
        .map(|(path, text)| (PathBuf::from(path), text.replace("{{name}}", name)))
        .collect()
}

/// Which language the connector folder `dir` is in.
pub fn detect(dir: &Path) -> Option<Lang> {
    if dir.join("Cargo.toml").is_file() {
        Some(Lang::Rust)
    } else if dir.join("app.py").is_file() {
        Some(Lang::Python)
    } else if dir.join("app.js").is_file() {
        Some(Lang::Js)
    } else {
        None
    }
}

/// Runs a build step; its output goes to stderr (stdout is the component's path).
fn run(mut cmd: Command, what: &str, missing: &str) -> Result<(), KitError> {
    let status = cmd.stdout(std::io::stderr()).status().map_err(|e| {
        KitError::Scaffold(if e.kind() == std::io::ErrorKind::NotFound {
            missing.to_string()
        } else {
            format!("{what}: {e}")
        })
    })?;
    if !status.success() {
        return Err(KitError::Scaffold(format!(
            "{what} failed ({status}): see its output above"
        )));
    }
    Ok(())
}

/// The folder's name in its `package.json` (JavaScript) or its folder name (Python).
fn name_of(dir: &Path, lang: Lang) -> Result<String, KitError> {
    if lang == Lang::Js {
        let text = std::fs::read_to_string(dir.join("package.json"))
            .map_err(|e| KitError::Scaffold(format!("package.json: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| KitError::Scaffold(format!("package.json: {e}")))?;
        return json["name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| KitError::Scaffold("package.json has no name".into()));
    }
    let dir = dir
        .canonicalize()
        .map_err(|e| KitError::Scaffold(format!("{}: {e}", dir.display())))?;
    Ok(dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "connector".into()))
}

/// Builds the Python or JavaScript connector in `dir` into `dir/target/NAME.wasm`.
pub fn build(dir: &Path, lang: Lang) -> Result<PathBuf, KitError> {
    let name = name_of(dir, lang)?;
    let out = dir.join("target").join(format!("{name}.wasm"));
    std::fs::create_dir_all(dir.join("target"))
        .map_err(|e| KitError::Scaffold(format!("creating target/: {e}")))?;
    match lang {
        Lang::Rust => unreachable!("Rust crates build with cargo"),
        Lang::Python => {
            eprintln!("building {} with componentize-py", dir.display());
            let mut cmd = Command::new("componentize-py");
            cmd.current_dir(dir)
                .args([
                    "-d",
                    "wit",
                    "-w",
                    "connector",
                    "componentize",
                    "-p",
                    ".",
                    "app",
                    "-o",
                ])
                .arg(format!("target/{name}.wasm"));
            run(
                cmd,
                "componentize-py",
                "componentize-py is not on PATH: `pip install componentize-py==0.25.1` (a virtual environment is fine)",
            )?;
        }
        Lang::Js => {
            let missing = "Node.js and npm are needed to build a JavaScript connector (Debian: apt-get install nodejs npm)";
            if !dir
                .join("node_modules/@bytecodealliance/componentize-js")
                .is_dir()
            {
                eprintln!(
                    "installing componentize-js in {} (npm install)",
                    dir.display()
                );
                let mut npm = Command::new("npm");
                npm.current_dir(dir)
                    .args(["install", "--silent", "--no-audit", "--no-fund"]);
                run(npm, "npm install", missing)?;
            }
            eprintln!("building {} with componentize-js", dir.display());
            let mut node = Command::new("node");
            node.current_dir(dir).arg("build.mjs");
            run(node, "node build.mjs", missing)?;
        }
    }
    if !out.is_file() {
        return Err(KitError::Scaffold(format!(
            "the build succeeded but {} is missing",
            out.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::PYTHON;
    use std::path::Path;

    /// Every module of the Python SDK is in what `connector new --lang python` writes
    /// (a module left out breaks the package's imports out of tree).
    #[test]
    fn the_embedded_python_sdk_is_the_whole_sdk() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk-python/passerelle_sdk");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".py"))
            .map(|n| format!("passerelle_sdk/{n}"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = PYTHON
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p.starts_with("passerelle_sdk/"))
            .collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
