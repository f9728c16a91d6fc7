//! Practices and accounts: the searchable, paginated list; a practice with its accounts
//! (last run, next sync, pause) and "Sync now"; an account with its run history and
//! "Resume" when paused. No appointment is shown here: the console carries no patient
//! data.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Ctx};
use super::{chart, ConsoleState};
use passerelle_service::runs::{RunQuery, SyncRequest};

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

/// `GET /console/practices?q=&after=`.
pub async fn list(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = match state
        .daemon
        .app
        .practice_page(
            query.q.as_deref(),
            query.after.as_deref(),
            Some(PAGE),
            state.daemon.now(),
        )
        .await
    {
        Ok(p) => p,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let body = html! {
        form.filters method="get" action="/console/practices" {
            label { "Search id or name" input type="search" name="q" value=[query.q.as_deref()]; }
            button type="submit" { "Search" }
        }
        p.muted { (page.total) " practice(s)" @if query.after.is_some() { ", after " (query.after.as_deref().unwrap_or_default()) } }
        @if page.practices.is_empty() { (layout::none("no practice matches")) } @else {
            table {
                thead { tr { th { "Practice" } th { "Name" } th { "Schedule" } th { "Next sync" } } }
                tbody {
                    @for p in &page.practices {
                        tr {
                            td { a href={ "/console/practices/" (p.practice.id) } { (p.practice.id) } }
                            td { (p.practice.name) }
                            td { code { (p.effective_schedule) } " " span.muted { (p.practice.timezone) } }
                            td { @if let Some(n) = &p.next_sync { (layout::when(n)) } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = page.next {
            (layout::next_link("/console/practices", &[("q", query.q.clone())], ("after", next)))
        }
    };
    layout::page(&ctx, "Practices", body)
}

/// `GET /console/practices/{id}`.
pub async fn show(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let app = &state.daemon.app;
    let (practice, accounts) = match tokio::try_join!(
        app.show_practice(&id, state.daemon.now()),
        app.account_states(&id)
    ) {
        Ok(both) => both,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let body = html! {
        dl.facts {
            dt { "Name" } dd { (practice.practice.name) }
            dt { "Time zone" } dd { (practice.practice.timezone) }
            dt { "Schedule" } dd { code { (practice.effective_schedule) } }
            dt { "Next sync" } dd { @if let Some(n) = &practice.next_sync { (layout::when(n)) } @else { "—" } }
        }
        @if ctx.admin {
            p {
                form.inline method="post" action={ "/console/practices/" (id) "/sync" } {
                    (layout::csrf(&ctx))
                    button type="submit" { "Sync now" }
                }
                span.muted { "every account, incremental (a run already queued or running is reused)" }
            }
        }
        h2 { "Accounts" }
        @if accounts.is_empty() { (layout::none("no account")) } @else {
            table {
                thead { tr { th { "Account" } th { "Connector" } th { "Last run" } th { "Paused" } th {} } }
                tbody {
                    @for a in &accounts {
                        tr {
                            td { a href={ "/console/accounts/" (a.account.id) } { (a.account.id) } @if let Some(l) = &a.account.label { br; span.muted { (l) } } }
                            td { a href={ "/console/connectors/" (a.account.connector) } { (a.account.connector) } }
                            td {
                                @if let Some(r) = &a.last_run {
                                    a href={ "/console/runs/" (r.id) } { (r.id) } " " (layout::badge(r.status)) " " span.muted { (layout::when(&r.started_at)) }
                                } @else { span.muted { "never" } }
                            }
                            td { @if let Some(p) = &a.paused { (p.reason.as_str()) ", " (layout::when(&p.paused_at)) } }
                            td {
                                @if ctx.admin {
                                    form.inline method="post" action={ "/console/practices/" (id) "/sync" } {
                                        (layout::csrf(&ctx))
                                        input type="hidden" name="account" value=(a.account.id);
                                        button.secondary type="submit" { "Sync now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, &format!("Practice {id}"), body)
}

/// How a queued (or coalesced) run is announced.
fn queued(run_id: i64, coalesced: bool) -> String {
    if coalesced {
        format!("run {run_id} (already queued)")
    } else {
        format!("run {run_id} queued")
    }
}

#[derive(Debug, Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    full: Option<String>,
}

/// `POST /console/practices/{id}/sync`: the daemon's "Sync now".
pub async fn sync_now(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<SyncForm>,
) -> Response {
    let request = SyncRequest {
        account: form.account.filter(|a| !a.is_empty()),
        full: form.full.is_some(),
    };
    match state.daemon.sync_now(&id, &request).await {
        Ok(runs) => {
            let described: Vec<String> = runs
                .iter()
                .map(|r| format!("{}: {}", r.account_id, queued(r.run_id, r.coalesced)))
                .collect();
            let notice = format!("Sync now — {}", described.join("; "));
            layout::done(&state, &ctx, notice, &format!("/console/practices/{id}"))
        }
        Err(e) => layout::failure(Some(&ctx), e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    before: Option<i64>,
}

/// `GET /console/accounts/{id}`: the account's runs, newest first, with their durations.
pub async fn account(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let app = &state.daemon.app;
    let run_query = RunQuery {
        account: Some(id.clone()),
        before: query.before,
        limit: Some(PAGE),
        ..RunQuery::default()
    };
    let (account, runs, pause) = match tokio::try_join!(
        app.account(&id),
        app.runs(&run_query),
        app.account_pause(&id)
    ) {
        Ok(all) => all,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let body = html! {
        dl.facts {
            dt { "Practice" } dd { a href={ "/console/practices/" (account.practice_id) } { (account.practice_id) } }
            dt { "Connector" } dd { a href={ "/console/connectors/" (account.connector) } { (account.connector) } }
            @if let Some(l) = &account.label { dt { "Label" } dd { (l) } }
            dt { "Settings" } dd { @for k in account.settings.keys() { code { (k) } " " } }
            dt { "Secrets" } dd { @for k in &account.secrets { code { (k) } " " } span.muted { "(values are never shown)" } }
        }
        @if let Some(p) = &pause {
            h2 { "Paused" }
            p.problem { (p.reason.as_str()) " since " (layout::when(&p.paused_at)) " (run " a href={ "/console/runs/" (p.run_id) } { (p.run_id) } ", " (p.connector) " " (p.version) "): " code { (p.drift.to_string()) } }
            @if ctx.admin {
                form.inline method="post" action={ "/console/accounts/" (id) "/resume" } {
                    (layout::csrf(&ctx))
                    button type="submit" { "Resume" }
                }
                span.muted { "lifts the pause and queues a re-drive run" }
            }
        }
        h2 { "Runs" }
        (chart::run_durations(&runs))
        (super::runs::table(&runs))
        @if runs.len() as i64 == PAGE {
            @if let Some(last) = runs.last() {
                (layout::next_link(&format!("/console/accounts/{id}"), &[], ("before", last.id.to_string())))
            }
        }
    };
    layout::page(&ctx, &format!("Account {id}"), body)
}

/// `POST /console/accounts/{id}/resume`.
pub async fn resume(
    State(state): State<ConsoleState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match state.daemon.resume(&id).await {
        Ok(r) => layout::done(
            &state,
            &ctx,
            format!(
                "{} resumed: {}",
                r.account_id,
                queued(r.run_id, r.coalesced)
            ),
            &format!("/console/accounts/{id}"),
        ),
        Err(e) => layout::failure(Some(&ctx), e),
    }
}
