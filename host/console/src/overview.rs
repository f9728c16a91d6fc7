//! `GET /console`: the last day in one screen: runs by status per platform, what needs
//! attention (paused accounts with their drift report, quarantined items, versions
//! waiting for approval, canaries), and the charts.

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use maud::html;

use super::layout::{self, Ctx};
use super::{chart, ConsoleState};
use passerelle_model::run::Status;

/// Paused accounts listed on the overview (the rest are counted).
const PAUSES_SHOWN: usize = 20;

pub async fn page(State(state): State<ConsoleState>, Extension(ctx): Extension<Ctx>) -> Response {
    let overview = match state.daemon.app.overview(state.daemon.now()).await {
        Ok(o) => o,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let total: i64 = overview.platforms.iter().map(|p| p.total).sum();
    let failed: i64 = overview
        .platforms
        .iter()
        .map(|p| p.count(Status::Failed) + p.count(Status::Drift))
        .sum();
    let pending: usize = overview.connectors.iter().map(|c| c.pending.len()).sum();
    let canaries = overview
        .connectors
        .iter()
        .filter(|c| c.canary.is_some())
        .count();
    let columns = [
        Status::Succeeded,
        Status::Failed,
        Status::Drift,
        Status::Skipped,
        Status::Cancelled,
        Status::Queued,
        Status::Running,
    ];
    let body = html! {
        p.muted { "The last 24 hours, to " (overview.now.format("%Y-%m-%d %H:%M UTC")) "." }
        section.cards {
            div.card { div.big { (total) } "runs" }
            div.card.alert[failed > 0] { div.big { (failed) } a href="/console/runs?status=failed" { "failed" } " or " a href="/console/runs?status=drift" { "drifted" } }
            div.card.alert[!overview.paused.is_empty()] { div.big { (overview.paused.len()) } "accounts paused" }
            div.card.alert[overview.quarantined > 0] { div.big { (overview.quarantined) } "items quarantined" }
            div.card.alert[pending > 0] { div.big { (pending) } a href="/console/connectors" { "versions awaiting approval" } }
            div.card { div.big { (canaries) } "canaries running" }
        }
        h2 { "Runs by platform" }
        @if overview.platforms.is_empty() { (layout::none("no run in the last 24 hours")) } @else {
            table {
                thead { tr { th { "Platform" } @for s in columns { th.num { (s.as_str()) } } th.num { "total" } } }
                tbody {
                    @for p in &overview.platforms {
                        tr {
                            td { a href={ "/console/runs?connector=" (p.connector) } { (p.connector) } }
                            @for s in columns {
                                td.num {
                                    @let n = p.count(s);
                                    @if n > 0 { a href={ "/console/runs?connector=" (p.connector) "&status=" (s.as_str()) } { (n) } } @else { span.muted { "0" } }
                                }
                            }
                            td.num { (p.total) }
                        }
                    }
                }
            }
        }
        h2 { "Runs per quarter-hour" }
        p.legend { span.ok { "succeeded" } span.bad { "failed or drift" } span.other { "queued, running, skipped, cancelled" } }
        (chart::quarter_hours(&overview.quarter_hours))
        h2 { "Run durations per platform, last 14 days" }
        p.legend.muted { "solid: median (p50) · dashed: p95 · one point per day" }
        @if overview.durations.is_empty() { (layout::none("no finished run in 14 days")) } @else {
            div.charts { @for (connector, days) in &overview.durations { (chart::durations(connector, days)) } }
        }
        h2 { "Accounts paused" }
        @if overview.paused.is_empty() { (layout::none("none")) } @else {
            table {
                thead { tr { th { "Account" } th { "Platform" } th { "Why" } th { "Since" } th { "Run" } } }
                tbody {
                    @for p in overview.paused.iter().take(PAUSES_SHOWN) {
                        tr {
                            td { a href={ "/console/accounts/" (p.account_id) } { (p.account_id) } }
                            td { (p.connector) " " span.muted { (p.version) } }
                            td { (p.reason.as_str()) ": " code { (p.drift.to_string()) } }
                            td { (layout::when(&p.paused_at)) }
                            td { a href={ "/console/runs/" (p.run_id) } { (p.run_id) } }
                        }
                    }
                }
            }
            @if overview.paused.len() > PAUSES_SHOWN {
                p.muted { "and " (overview.paused.len() - PAUSES_SHOWN) " more (" code { "passerelle paused" } ")" }
            }
        }
        h2 { "Connectors" }
        table {
            thead { tr { th { "Connector" } th { "Active" } th { "Awaiting approval" } th { "Canary" } th.num { "Versions" } } }
            tbody {
                @for c in &overview.connectors {
                    tr {
                        td { a href={ "/console/connectors/" (c.name) } { (c.name) } }
                        td { @if let Some(v) = &c.active { (v) } @else { span.muted { "none" } } }
                        td { @for (v, _) in &c.pending { a href={ "/console/connectors/" (c.name) } { (v) } " " } }
                        td { @if let Some((v, n)) = &c.canary { (v) " for " (n) " practice(s)" } }
                        td.num { (c.versions) }
                    }
                }
            }
        }
    };
    layout::page(&ctx, "Overview", body)
}
