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
            checks,
        } => {
            let checks = match checks {
                None => Check::ALL.to_vec(),
                Some(list) => list.into_iter().flatten().collect(),
            };
            let (cassette, live) = match (cassette, record) {
                (_, Some(dir)) => (dir, Some(config.http.clone())),
                (Some(dir), None) => (dir, None),
                (None, None) => bail!("give --cassette DIR, or --record DIR to record one"),
            };
            // Blessing without a file names the cassette's own.
            let expect = match (expect, bless) {
                (None, true) => Some(cassette.join("expected.json")),
                (expect, _) => expect,
            };
            let options = TestOptions {
                component,
                cassette,
                fixtures,
                live,
                bench: BenchOptions {
                    settings: settings.into_iter().collect(),
                    secrets: secrets.into_iter().collect(),
                    now,
                    window,
                },
                full,
                expect,
                bless,
                checks,
            };
            Ok(Output::ConnectorTest(Box::new(
                passerelle_kit::test(options).await?,
            )))
        }
    }
}
