//! The sync log: filtered by status, platform, trigger, start and practice, a page at a
//! time (newest first), and one run's detail: version and hash, counts, timings, error
//! kind with its PII-free detail, drift report. A run still queued or running reloads
//! itself every few seconds (an HTML refresh, no script).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{NaiveDate, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Ctx};
use super::ConsoleState;
use passerelle_model::run::{Run, Status, Trigger};
use passerelle_service::runs::RunQuery;
use passerelle_service::ServiceError;

const PAGE: i64 = 50;

/// The filters as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    trigger: Option<String>,
    /// A day (`YYYY-MM-DD`, UTC) or an RFC 3339 instant.
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    practice: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filters {
    /// The service's query for these filters.
    fn query(&self) -> Result<RunQuery, ServiceError> {
        let invalid = |e: passerelle_model::run::UnknownValue| ServiceError::invalid(e.to_string());
        let since = given(&self.since).map(|s| match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(day) => Utc
                .from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
                .to_rfc3339(),
            Err(_) => s.to_string(),
        });
        Ok(RunQuery {
            status: given(&self.status)
                .map(Status::parse)
                .transpose()
                .map_err(invalid)?,
            trigger: given(&self.trigger)
                .map(Trigger::parse)
                .transpose()
                .map_err(invalid)?,
            connector: given(&self.connector).map(str::to_string),
            practice: given(&self.practice).map(str::to_string),
            since,
            before: self.before,
            limit: Some(PAGE),
            ..RunQuery::default()
        })
    }
}

fn select(name: &str, options: &[&str], current: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            option value="" { "any" }
            @for o in options { option value=(o) selected[current == Some(*o)] { (o) } }
        }
    }
}

/// `GET /console/runs`.
pub async fn list(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Query(filters): Query<Filters>,
) -> Response {
    let app = &state.daemon.app;
    let runs = match async { app.runs(&filters.query()?).await }.await {
        Ok(r) => r,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let connectors: Vec<String> = match app.connector_views().await {
        Ok(v) => {
            let mut names: Vec<String> = v.into_iter().map(|c| c.name).collect();
            names.dedup();
            names
        }
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let triggers: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    let connector_names: Vec<&str> = connectors.iter().map(String::as_str).collect();
    let body = html! {
        form.filters method="get" action="/console/runs" {
            label { "Status" (select("status", &statuses, given(&filters.status))) }
            label { "Platform" (select("connector", &connector_names, given(&filters.connector))) }
            label { "Trigger" (select("trigger", &triggers, given(&filters.trigger))) }
            label { "Since (UTC day)" input type="date" name="since" value=[given(&filters.since)]; }
            label { "Practice" input type="text" name="practice" value=[given(&filters.practice)]; }
            button type="submit" { "Filter" }
            a href="/console/runs" { "clear" }
        }
        (table(&runs))
        @if runs.len() as i64 == PAGE {
            @if let Some(last) = runs.last() {
                (layout::next_link("/console/runs", &[
                    ("status", filters.status.clone()),
                    ("connector", filters.connector.clone()),
                    ("trigger", filters.trigger.clone()),
                    ("since", filters.since.clone()),
                    ("practice", filters.practice.clone()),
                ], ("before", last.id.to_string())))
            }
        }
    };
    layout::page(&ctx, "Runs", body)
}

/// A table of runs (the sync log, an account's history).
pub fn table(runs: &[Run]) -> Markup {
    html! {
        @if runs.is_empty() { (layout::none("no run")) } @else {
            table {
                thead { tr { th { "Run" } th { "Status" } th { "Account" } th { "Platform" } th { "Trigger" } th { "Started" } th.num { "Duration" } th { "Error" } } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href={ "/console/runs/" (r.id) } { (r.id) } }
                            td { (layout::badge(r.status)) }
                            td { a href={ "/console/accounts/" (r.account_id) } { (r.account_id) } }
                            td { (r.connector) " " span.muted { (r.connector_version) } }
                            td { (r.trigger.as_str()) " " span.muted { (r.mode.as_str()) } }
                            td { (layout::when(&r.started_at)) }
                            td.num { @if let Some(ms) = r.duration_ms { (layout::duration(ms)) } }
                            td { @if let Some(k) = r.error_kind { code { (k.as_str()) } } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/runs/{id}`.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
) -> Response {
    let run = match state.daemon.app.run(id).await {
        Ok(r) => r,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let c = &run.counts;
    let counts = [
        ("appointments added", c.appointments_added),
        ("appointments changed", c.appointments_changed),
        ("appointments deleted", c.appointments_deleted),
        ("appointments tombstoned", c.appointments_tombstoned),
        ("slots written", c.slots_written),
        ("slots removed", c.slots_removed),
        ("HTTP requests", c.http_requests),
        ("bytes received", c.bytes_received),
        ("checkpoints", c.checkpoints),
    ];
    let live = matches!(run.status, Status::Queued | Status::Running);
    // What the flight recorder kept (listed without opening it: no read to audit).
    let kept = state.daemon.app.run_cassette_meta(id).await.ok().flatten();
    let body = html! {
        @if live { meta http-equiv="refresh" content="3"; }
        p { (layout::badge(run.status)) " " @if live { span.muted { "(this page reloads until the run ends)" } } }
        dl.facts {
            dt { "Account" } dd { a href={ "/console/accounts/" (run.account_id) } { (run.account_id) } " of " a href={ "/console/practices/" (run.practice_id) } { (run.practice_id) } }
            dt { "Connector" } dd { a href={ "/console/connectors/" (run.connector) } { (run.connector) } " " (run.connector_version) }
            dt { "Component hash" } dd { code { (run.connector_sha256) } }
            dt { "Trigger, mode" } dd { (run.trigger.as_str()) ", " (run.mode.as_str()) @if run.attempt > 1 { ", attempt " (run.attempt) } }
            dt { "Started" } dd { (layout::when(&run.started_at)) }
            dt { "Finished" } dd { @if let Some(f) = &run.finished_at { (layout::when(f)) } @else { "—" } }
            dt { "Duration" } dd { @if let Some(ms) = run.duration_ms { (layout::duration(ms)) } @else { "—" } }
            @if let Some(owner) = &run.owner { dt { "Ran on" } dd { (owner) } }
            @if let Some(secs) = run.retry_after_secs { dt { "Retry-After" } dd { (secs) " s" } }
        }
        h2 { "Counts" }
        table { tbody { @for (label, n) in counts { tr { td { (label) } td.num { (n) } } } } }
        @if run.error_kind.is_some() || run.error_detail.is_some() {
            h2 { "Error" }
            dl.facts {
                @if let Some(k) = run.error_kind { dt { "Kind" } dd { code { (k.as_str()) } } }
                @if let Some(d) = &run.error_detail { dt { "Detail" } dd { (layout::detail(d)) } }
            }
        }
        @if let Some(d) = &run.drift {
            h2 { "Drift report" }
            dl.facts {
                dt { "Endpoint" } dd { code { (d.endpoint) } }
                dt { "JSON path" } dd { code { (d.path) } }
                dt { "Expected" } dd { (d.expected) }
                dt { "Found" } dd { (d.found) }
                @if let Some(shape) = &d.shape { dt { "Shape there" } dd { code { (shape) } } }
            }
        }
        @if let Some(m) = &run.message { h2 { "Connector's note" } (layout::detail(m)) }
        @if let Some(k) = &kept {
            h2 { "Flight recording" }
            p.muted { "The run's HTTP exchanges, redacted and sealed, kept for its connector's author to replay." }
            dl.facts {
                dt { "Kept because" } dd { code { (k.reason) } }
                dt { "Exchanges" } dd { (k.exchanges) " (" (k.bytes / 1024) " KiB)" }
                dt { "Recorded" } dd { (layout::when(&k.recorded_at)) }
                dt { "Download" } dd { a href={ "/console/runs/" (id) "/cassette" } { "cassette (JSON)" } " — every read is audited" }
                dt { "Replay" } dd { code { "passerelle runs cassette " (id) " --out DIR" } " then " code { "passerelle connector test COMPONENT --cassette DIR" } }
            }
        }
    };
    layout::page(&ctx, &format!("Run {id}"), body)
}

/// `GET /console/runs/{id}/cassette`: the run's cassette as a JSON download (the
/// service checks the scope and audits the read).
pub async fn cassette(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
) -> Response {
    match state.daemon.app.run_cassette(id).await {
        Ok(c) => (
            [(
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"run-{id}-cassette.json\""),
            )],
            axum::Json(c),
        )
            .into_response(),
        Err(e) => layout::failure(Some(&ctx), e),
    }
}
