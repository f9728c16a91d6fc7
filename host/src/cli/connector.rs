//! `passerelle connector …`: the connector kit's commands. Arguments become a
//! [`passerelle_kit::TestOptions`]; the report goes to the renderer
//! ([`super::render_kit`] for its text).

use anyhow::{bail, Result};

use super::args::ConnectorCmd;
use super::render::Output;
use passerelle_kit::checks::Check;
use passerelle_kit::harness::BenchOptions;
use passerelle_kit::TestOptions;
use passerelle_service::config::Config;

/// Runs a `connector` command; an error (non-zero exit) when the test did not pass.
pub async fn run(command: ConnectorCmd, config: &Config) -> Result<Output> {
    match command {
        ConnectorCmd::New { name, dir, lang } => {
            let made = passerelle_kit::scaffold::new_connector(&name, &dir, lang)?;
            let shown = made.display();
            let (first, wasm) = match lang {
                passerelle_kit::languages::Lang::Rust => (
                    format!("cd {shown} && cargo test            # its unit test\n  "),
                    format!(
                        "{shown}/target/wasm32-wasip2/release/{}.wasm",
                        name.replace('-', "_")
                    ),
                ),
                _ => (String::new(), format!("{shown}/target/{name}.wasm")),
            };
            Ok(Output::Text(format!(
                "wrote the connector {shown}\n\
                 next:\n  \
                 {first}passerelle connector build {shown}\n  \
                 passerelle connector test {wasm} \\\n      \
                 --cassette {shown}/cassettes/example --secret api-key=made-up-key \\\n      \
                 --expect {shown}/cassettes/example/expected.json\n"
            )))
        }
        ConnectorCmd::Build { dir } => {
            let component = passerelle_kit::scaffold::build_connector(&dir)?;
            Ok(Output::Text(format!("{}\n", component.display())))
        }
        ConnectorCmd::Test {
            component,
            cassette,
            fixtures,
            record,
            settings,
            secrets,
            now,
            window,
            full,
            expect,
            bless,
            summary,
            checks,
        } => {
            let checks = match checks {
                None => Check::ALL.to_vec(),
                Some(list) => list.into_iter().flatten().collect(),
            };
            let secrets = secret_values(secrets, record.is_some())?;
            let (cassettes, live, many) = match (cassette, record) {
                (_, Some(dir)) => (vec![dir], Some(config.http.clone()), false),
                (Some(dir), None) => {
                    let found = passerelle_kit::cassette::cassettes_in(&dir)?;
                    let many = found.len() != 1 || found[0] != dir;
                    (found, None, many)
                }
                (None, None) => bail!("give --cassette DIR, or --record DIR to record one"),
            };
            if many && expect.is_some() {
                bail!(
                    "--expect names one file: with a folder of cassettes each is compared with its own expected.json"
                );
            }
            let mut reports = Vec::new();
            for cassette in cassettes {
                // Blessing writes, and a test compares with, the cassette's own file
                // unless --expect names another.
                let own = cassette.join("expected.json");
                let expect = match &expect {
                    Some(path) => Some(path.clone()),
                    None if bless || own.is_file() => Some(own),
                    None => None,
                };
                let options = TestOptions {
                    component: component.clone(),
                    cassette,
                    fixtures: fixtures.clone(),
                    live: live.clone(),
                    bench: BenchOptions {
                        settings: settings.iter().cloned().collect(),
                        secrets: secrets.clone(),
                        now,
                        window,
                        // From the cassette's `[replay]`, if it has one.
                        cursor: None,
                    },
                    full,
                    expect,
                    bless,
                    checks: checks.clone(),
                };
                reports.push(passerelle_kit::test(options).await?);
            }
            Ok(Output::ConnectorTest {
                reports,
                many,
                summary,
            })
        }
    }
}

/// The environment variable that holds secret `name`'s value.
fn secret_variable(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PASSERELLE_SECRET_{upper}")
}

/// `--secret` values: given (made-up ones, for a replay), or read from the environment.
/// With `live` (a recording against the real platform) a value on the command line is
/// refused: it is a real secret there.
fn secret_values(
    secrets: Vec<(String, Option<String>)>,
    live: bool,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut values = std::collections::BTreeMap::new();
    for (name, value) in secrets {
        let variable = secret_variable(&name);
        let value = match value {
            Some(_) if live => bail!(
                "--record uses real secrets: give `--secret {name}` and its value in {variable}, not on the command line (every user of the machine sees it in `ps`, and the shell keeps it in its history)"
            ),
            Some(value) => value,
            None => std::env::var(&variable).map_err(|_| {
                anyhow::anyhow!("--secret {name}: set {variable} to its value")
            })?,
        };
        values.insert(name, value);
    }
    Ok(values)
}
