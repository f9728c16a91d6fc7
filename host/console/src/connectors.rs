//! Connectors: each one's versions (active, waiting for approval with what they ask for
//! beyond the active one, canary), the actions on them (approve, rollback, canary,
//! promote, stop the canary), the refused candidates with their reasons, and uploading a
//! `.wasm` (the same installation checks as every other way in).

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Ctx};
use super::ConsoleState;
use passerelle_model::connector::{Escalation, Outcome};
use passerelle_service::connectors::ConnectorView;
use passerelle_service::overview::summarise;
use passerelle_service::plugins::Candidate;
use passerelle_service::ServiceError;

/// Rejections listed per page.
const REJECTIONS: i64 = 50;

/// `GET /console/connectors`.
pub async fn list(State(state): State<ConsoleState>, Extension(ctx): Extension<Ctx>) -> Response {
    let app = &state.daemon.app;
    let (views, rejections) =
        match tokio::try_join!(app.connector_views(), app.rejections(Some(REJECTIONS))) {
            Ok(both) => both,
            Err(e) => return layout::failure(Some(&ctx), e),
        };
    let body = html! {
        table {
            thead { tr { th { "Connector" } th { "Active" } th { "Awaiting approval" } th { "Canary" } th.num { "Versions" } } }
            tbody {
                @for c in summarise(&views) {
                    tr {
                        td { a href={ "/console/connectors/" (c.name) } { (c.name) } }
                        td { @if let Some(v) = &c.active { (v) } @else { span.muted { "none" } } }
                        td { @for (v, _) in &c.pending { (v) " " } }
                        td { @if let Some((v, n)) = &c.canary { (v) " for " (n) " practice(s)" } }
                        td.num { (c.versions) }
                    }
                }
            }
        }
        @if ctx.admin {
            h2 { "Upload a version" }
            form.inline method="post" enctype="multipart/form-data" action={ "/console/connectors/upload?csrf=" (ctx.csrf) } {
                input type="file" name="component" accept=".wasm,application/wasm" required;
                button type="submit" { "Upload" }
            }
            p.muted { "A version that asks for more than the active one (hosts, secrets, a higher rate limit) waits for approval." }
        }
        h2 { "Refused candidates" }
        (rejection_table(&rejections))
    };
    layout::page(&ctx, "Connectors", body)
}

fn rejection_table(rejections: &[passerelle_model::connector::Rejection]) -> Markup {
    html! {
        @if rejections.is_empty() { (layout::none("none")) } @else {
            table {
                thead { tr { th { "When" } th { "Source" } th { "Name, version" } th { "Check" } th { "Reason" } } }
                tbody {
                    @for r in rejections {
                        tr {
                            td { (layout::when(&r.at)) }
                            td { (r.source) }
                            td { (r.name.as_deref().unwrap_or("?")) " " (r.version.as_deref().unwrap_or("")) }
                            td { code { (r.kind) } }
                            td { (r.reason) }
                        }
                    }
                }
            }
        }
    }
}

fn escalation(e: &Escalation) -> Markup {
    html! {
        ul {
            @for h in &e.new_hosts { li { "new host " code { (h) } } }
            @for s in &e.new_secrets { li { "new secret " code { (s) } } }
            @for h in &e.risky_hosts { li { "needs consent: " (h) } }
            @if let Some(r) = &e.rate_limit {
                li { "rate limit raised from " (r.from.requests_per_second) "/s (burst " (r.from.burst) ") to " (r.to.requests_per_second) "/s (burst " (r.to.burst) ")" }
            }
            @if e.accounts_waiting > 0 { li { (e.accounts_waiting) " account(s) configured for it already (their settings and secrets)" } }
            @if let Some(shadow) = &e.shadow { li { (shadow) " — details: " code { "passerelle plugins shadow NAME VERSION" } } }
        }
    }
}

fn action(ctx: &Ctx, name: &str, what: &str, label: &str, fields: Markup) -> Markup {
    html! {
        form.inline method="post" action={ "/console/connectors/" (name) "/" (what) } {
            (layout::csrf(ctx))
            (fields)
            button.secondary type="submit" { (label) }
        }
    }
}

fn version_actions(ctx: &Ctx, v: &ConnectorView) -> Markup {
    let version = html! { input type="hidden" name="version" value=(v.version); };
    html! {
        @if v.pending_approval.is_some() { (action(ctx, &v.name, "approve", "Approve", version.clone())) }
        @if v.canary.is_some() {
            (action(ctx, &v.name, "promote", "Promote", html! {}))
            (action(ctx, &v.name, "stop-canary", "Stop canary", html! {}))
        } @else if !v.active && v.pending_approval.is_none() {
            (action(ctx, &v.name, "rollback", "Make active", version.clone()))
            (action(ctx, &v.name, "canary", "Canary", html! {
                (version)
                input type="text" name="practices" placeholder="practice ids, comma-separated" required;
            }))
        }
    }
}

/// `GET /console/connectors/{name}`.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
) -> Response {
    let app = &state.daemon.app;
    let (views, rejections) = match tokio::try_join!(app.connector_views(), app.rejections(None)) {
        Ok(both) => both,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let versions: Vec<&ConnectorView> = views.iter().filter(|v| v.name == name).collect();
    if versions.is_empty() {
        return layout::failure(
            Some(&ctx),
            ServiceError::not_found(format!("connector `{name}` is not installed")),
        );
    }
    let rejections: Vec<_> = rejections
        .into_iter()
        .filter(|r| r.name.as_deref() == Some(name.as_str()))
        .collect();
    let body = html! {
        table {
            thead { tr { th { "Version" } th { "State" } th { "Installed" } th { "Hash" } @if ctx.admin { th {} } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.version) }
                        td {
                            @if v.active { span.badge.succeeded { "active" } }
                            @if let Some(p) = &v.canary { span.badge.running { "canary" } " for " (p.join(", ")) }
                            @if let Some(e) = &v.pending_approval { span.badge.drift { "awaiting approval" } (escalation(e)) }
                        }
                        td { (layout::when(&v.installed_at)) @if let Some(a) = &v.activated_at { br; span.muted { "activated " (layout::when(a)) } } }
                        td { code { (v.sha256.get(..16).unwrap_or(&v.sha256)) "…" } }
                        @if ctx.admin { td { (version_actions(&ctx, v)) } }
                    }
                }
            }
        }
        @if ctx.admin {
            p { (action(&ctx, &name, "rollback", "Roll back to the previous version", html! {})) }
        }
        h2 { "Refused candidates" }
        (rejection_table(&rejections))
    };
    layout::page(&ctx, &format!("Connector {name}"), body)
}

/// The fields of a connector action's form.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    practices: Option<String>,
}

/// `POST /console/connectors/{name}/{approve|rollback|canary|stop-canary|promote}`.
pub async fn act(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path((name, what)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let app = &state.daemon.app;
    let version = form.version.as_deref().filter(|v| !v.is_empty());
    let outcome = match what.as_str() {
        "approve" => match version {
            Some(v) => app
                .approve(&name, v)
                .await
                .map(|a| format!("{name} {} approved and active", a.to)),
            None => Err(ServiceError::invalid("which version to approve?")),
        },
        "rollback" => app
            .rollback(&name, version)
            .await
            .map(|a| format!("{name} is back on {}", a.to)),
        "canary" => {
            let practices: Vec<String> = form
                .practices
                .unwrap_or_default()
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            match version {
                Some(v) => app.start_canary(&name, v, &practices).await.map(|c| {
                    format!(
                        "{name} {} runs as a canary for {}",
                        c.version,
                        c.practices.join(", ")
                    )
                }),
                None => Err(ServiceError::invalid("which version to run as a canary?")),
            }
        }
        "stop-canary" => app
            .stop_canary(&name)
            .await
            .map(|()| format!("{name}: canary stopped")),
        "promote" => app
            .promote(&name)
            .await
            .map(|a| format!("{name} {} promoted to every practice", a.to)),
        other => Err(ServiceError::not_found(format!(
            "no connector action `{other}`"
        ))),
    };
    match outcome {
        Ok(notice) => layout::done(&state, &ctx, notice, &format!("/console/connectors/{name}")),
        Err(e) => layout::failure(Some(&ctx), e),
    }
}

/// `POST /console/connectors/upload` (multipart, field `component`).
pub async fn upload(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    mut multipart: Multipart,
) -> Response {
    let limit = state.daemon.app.config.plugins.max_upload_bytes;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(mut field)) if field.name() == Some("component") => loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > limit {
                            return layout::refusal(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                &format!("a component may be at most {limit} bytes (plugins.max_upload_bytes)"),
                            );
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return layout::refusal(StatusCode::BAD_REQUEST, &e.body_text()),
                }
            },
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => return layout::refusal(StatusCode::BAD_REQUEST, &e.body_text()),
        }
    }
    if bytes.is_empty() {
        return layout::failure(
            Some(&ctx),
            ServiceError::invalid("choose a .wasm component to upload"),
        );
    }
    let candidate = Candidate {
        bytes,
        source: "console".into(),
        expected_name: None,
    };
    match state.daemon.app.install(candidate).await {
        Ok(installed) => {
            let name = installed.manifest.name.clone();
            let what = match installed.outcome {
                Outcome::Activated => "installed and active",
                Outcome::PendingApproval => "installed, waiting for approval",
                Outcome::AlreadyInstalled => "was already installed",
            };
            layout::done(
                &state,
                &ctx,
                format!("{name} {} {what}", installed.manifest.version),
                &format!("/console/connectors/{name}"),
            )
        }
        Err(e) => layout::failure(Some(&ctx), e),
    }
}
