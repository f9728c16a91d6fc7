//! JavaScript connectors, built with componentize-js: the pinned package this installs
//! with npm into `target/toolchains/js` (needs Node.js 20+ and npm), driven by a small
//! build script. Every `plugins/examples/*-js` (an `app.js` importing
//! `plugins/sdk-js/passerelle-sdk.js`) becomes `target/plugins/examples/<name>.wasm`.
//! The guests get no WASI random, stdio, clocks or HTTP (`disableFeatures`): they reach
//! the world only through passerelle's imports. One variant keeps `http`
//! (`variants/maiia-js-http.wasm`): the tests load it to show that a guest importing
//! `wasi:http` runs, its requests there denied.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::ports::runs;

/// The componentize-js release the SDK and examples are built and tested with.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";
/// The contract the JavaScript SDK targets.
const WIT: &str = "wit/v0.1.3";

const BUILD_SCRIPT: &str = r#"// Written by `cargo xtask build-plugins`: builds one JavaScript connector.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
const [source, wit, out, disabled] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath: source, witPath: wit, worldName: 'connector',
  disableFeatures: disabled.split(','),
});
await writeFile(out, component);
"#;

/// What the guests go without: they reach the world only through passerelle's imports.
const DISABLED: &str = "random,stdio,clocks,http,fetch-event";
/// The variant that keeps componentize-js's `http` feature (it then imports
/// `wasi:http`, which the host links with every request denied).
const DISABLED_BUT_HTTP: &str = "random,stdio,clocks,fetch-event";

/// The toolchain's folder, componentize-js installed in it.
fn toolchain(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/toolchains/js");
    let package = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let wanted = COMPONENTIZE_JS.rsplit('@').next().unwrap_or_default();
    let installed = std::fs::read_to_string(&package)
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{wanted}\"")));
    if !installed {
        anyhow::ensure!(
            runs("node") && runs("npm"),
            "the JavaScript connectors need Node.js 20+ and npm (Debian: apt-get install nodejs npm)"
        );
        std::fs::create_dir_all(&dir)?;
        println!("xtask: installing {COMPONENTIZE_JS} into {}", dir.display());
        let mut npm = Command::new("npm");
        npm.args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(COMPONENTIZE_JS);
        crate::status(npm, &format!("npm install {COMPONENTIZE_JS}"))?;
    }
    std::fs::write(dir.join("build.mjs"), BUILD_SCRIPT)?;
    Ok(dir)
}

/// Builds every JavaScript example into `out/examples/`; their names and sizes.
pub fn build_all(root: &Path, out: &Path) -> Result<Vec<String>> {
    let tool = toolchain(root)?;
    let target = out.join("examples");
    std::fs::create_dir_all(&target)?;
    let mut built = Vec::new();
    let dirs = crate::ports::examples(root, "app.js")?;
    for dir in dirs {
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let wasm = target.join(format!("{name}.wasm"));
        build(root, &tool, &dir, &wasm, DISABLED)?;
        built.push(crate::ports::built(&wasm)?);
        if name == "maiia-js" {
            let variants = out.join("variants");
            std::fs::create_dir_all(&variants)?;
            let wasm = variants.join("maiia-js-http.wasm");
            build(root, &tool, &dir, &wasm, DISABLED_BUT_HTTP)?;
            built.push(crate::ports::built(&wasm)?);
        }
    }
    Ok(built)
}

/// Builds the connector in `dir` into `wasm` without the `disabled` features.
fn build(root: &Path, tool: &Path, dir: &Path, wasm: &Path, disabled: &str) -> Result<()> {
    // From plugins/: the connector's relative import of ../../sdk-js resolves inside
    // the folder componentize-js maps into the guest.
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("plugins"))
        .arg(tool.join("build.mjs"))
        .arg(dir.join("app.js"))
        .arg(root.join(WIT))
        .arg(wasm)
        .arg(disabled);
    crate::status(
        cmd,
        &format!("building {} with componentize-js", wasm.display()),
    )
}
