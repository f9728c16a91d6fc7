//! What `plugins list`, `plugins install` and `plugins rejections` print: installed
//! versions, refused candidates and what an installation did, one line each; text from
//! a connector or a file name goes through [`printable`].

use super::printable::printable;
use passerelle_model::connector::{Outcome, Rejection};
use passerelle_service::connectors::{ConnectorView, InstallAnswer};

/// Installed versions, one line each (`*` active, `?` waiting for approval, with what
/// it asks for).
pub fn versions_text(versions: &[ConnectorView]) -> String {
    let mut out = String::new();
    if versions.is_empty() {
        out.push_str("no connectors installed: passerelle plugins install FILE.wasm\n");
    } else {
        out.push_str(&format!(
            "  {:<12} {:<10} {:<23}  installed   (* active, ? waits for approval)\n",
            "connector", "version", "sha256"
        ));
    }
    for v in versions {
        let mark = if v.active {
            "*"
        } else if v.pending_approval.is_some() {
            "?"
        } else {
            " "
        };
        out.push_str(&format!(
            "{mark} {:<12} {:<10} sha256:{}  installed {}\n",
            v.name,
            printable(&v.version),
            &v.sha256[..v.sha256.len().min(16)],
            v.installed_at
        ));
        if let Some(p) = &v.canary {
            out.push_str(&format!(
                "    canary for {}  (passerelle plugins promote {} | stop-canary {})\n",
                p.join(", "),
                v.name,
                v.name
            ));
        }
        if let Some(e) = &v.pending_approval {
            out.push_str(&format!(
                "    waits for approval: {}  (passerelle plugins approve {} {})\n",
                printable(&e.to_string()),
                v.name,
                printable(&v.version)
            ));
        }
    }
    out
}

pub fn rejections_text(rejections: &[Rejection]) -> String {
    if rejections.is_empty() {
        return "no refused candidates\n".into();
    }
    rejections
        .iter()
        .map(|r| {
            format!(
                "  {} {} [{}] {}: {}\n",
                r.at,
                printable(&r.source),
                r.kind,
                &r.sha256[..r.sha256.len().min(12)],
                printable(&r.reason)
            )
        })
        .collect()
}

/// What an installation did, in one line.
pub fn install_line(i: &InstallAnswer) -> String {
    let what = match i.outcome {
        Outcome::Activated => format!(
            "installed and activated{}",
            i.previous
                .as_deref()
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default()
        ),
        Outcome::AlreadyInstalled => "already installed".into(),
        Outcome::PendingApproval => format!(
            "installed, NOT activated: it asks for more than the active {}: {}; approve with `passerelle plugins approve {} {}`",
            printable(i.previous.as_deref().unwrap_or("version")),
            printable(&i.escalation.as_ref().map(ToString::to_string).unwrap_or_default()),
            i.name,
            printable(&i.version)
        ),
    };
    format!(
        "{} {} (sha256:{}): {what}",
        i.name,
        printable(&i.version),
        &i.sha256[..i.sha256.len().min(16)]
    )
}

/// A shadow replay: one line per cassette, then the verdict.
pub fn shadow(r: &passerelle_service::flight::shadow::ShadowReport, mut line: impl FnMut(String)) {
    use passerelle_service::flight::shadow::verdict_text;
    line(format!(
        "{} {} replayed on {} cassette(s){}",
        printable(&r.connector),
        printable(&r.version),
        r.cases.len(),
        match &r.against {
            Some(v) => format!(", compared with the active {}", printable(v)),
            None => String::new(),
        }
    ));
    for c in &r.cases {
        let mut text = format!(
            "{} run {} ({}, {}): {}",
            if c.unexpected { "!" } else { " " },
            c.run_id,
            printable(&c.account_id),
            printable(&c.reason),
            verdict_text(c.verdict)
        );
        if c.added + c.removed + c.changed > 0 {
            text.push_str(&format!(
                " — {} added, {} removed, {} changed (first: {})",
                c.added,
                c.removed,
                c.changed,
                c.first_ids
                    .iter()
                    .map(|i| printable(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(d) = &c.detail {
            text.push_str(&format!(" — {}", printable(d)));
        }
        line(text);
    }
    line(if r.unexpected == 0 {
        "no unexpected difference".to_string()
    } else {
        format!("{} unexpected difference(s)", r.unexpected)
    });
}
