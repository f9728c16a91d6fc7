//! `passerelle plugins validate FILE… [--shadow]`: the installation checks with nothing
//! written, what installing would do, and with `--shadow` the component replayed on its
//! connector's recorded cassettes.

use anyhow::Result;

use super::render::Output;
use passerelle_service::app::Passerelle;

pub async fn validate(
    app: &Passerelle,
    files: &[std::path::PathBuf],
    shadow: bool,
) -> Result<Output> {
    use passerelle_service::plugins::Examined;
    let mut found = Vec::new();
    for file in files {
        let candidate = passerelle_service::plugins::Candidate::from_file(file, "validate")?;
        let sha = passerelle_model::sha256_hex(&candidate.bytes);
        let answer = match app.examine(&candidate, &sha).await? {
            Ok(examined @ Examined::New { .. }) if shadow => {
                let Examined::New { manifest, .. } = &examined else {
                    unreachable!("matched above")
                };
                let report = app
                    .shadow_component(&manifest.name, &manifest.version, &candidate.bytes)
                    .await?;
                let mut text = examined_line(&examined, &sha);
                super::render_plugins::shadow(&report, |l| {
                    text.push('\n');
                    text.push_str(&l);
                });
                if report.unexpected > 0 {
                    Err(text)
                } else {
                    Ok(text)
                }
            }
            Ok(examined) => Ok(examined_line(&examined, &sha)),
            Err(r) => Err(format!("invalid ({}): {}", r.kind, r.reason)),
        };
        found.push((file.display().to_string(), answer));
    }
    Ok(Output::Validated(found))
}

fn examined_line(found: &passerelle_service::plugins::Examined, sha: &str) -> String {
    use passerelle_service::plugins::Examined;
    match found {
        Examined::Installed(i) => format!(
            "{} {} (sha256:{}) is installed already",
            i.manifest.name,
            i.manifest.version,
            &sha[..16]
        ),
        Examined::New {
            manifest,
            previous,
            escalation,
            ..
        } => format!(
            "{} {} (sha256:{}) is valid; installing it would {}",
            manifest.name,
            manifest.version,
            &sha[..16],
            match (escalation, previous) {
                (Some(e), _) => format!("wait for approval ({e})"),
                (None, Some(p)) => format!("activate it in place of {p}"),
                (None, None) => "activate it (the first version of this connector)".into(),
            }
        ),
    }
}
