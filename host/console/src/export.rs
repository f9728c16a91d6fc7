//! `GET /console/export`: the last open-data export (whichever daemon or command wrote
//! it): when, where, what it wrote, and every centre it left out with the reason, and
//! the visit motives it did not publish for want of a mapping — what `passerelle export
//! vitemadose` prints.

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use maud::html;

use super::layout::{self, Ctx};
use super::ConsoleState;

pub async fn page(State(state): State<ConsoleState>, Extension(ctx): Extension<Ctx>) -> Response {
    let report = match state.daemon.app.last_export().await {
        Ok(r) => r,
        Err(e) => return layout::failure(Some(&ctx), e),
    };
    let body = html! {
        @match &report {
            None => {
                (layout::none("no export yet"))
                p.muted { "Set " code { "export.vitemadose_dir" } " for a daemon to write it after each night, or run " code { "passerelle export vitemadose --out DIR" } "." }
            }
            Some(r) => {
                p { "Written " (layout::when(&r.at)) " into " code { (r.dir) } "." }
                section.cards {
                    div.card { div.big { (r.centres) } "centres" }
                    div.card { div.big { (r.available) } "with availability" }
                    div.card { div.big { (r.appointments) } "bookable slots" }
                    div.card { div.big { (r.departments) } "departments" }
                    div.card.alert[!r.left_out.is_empty()] { div.big { (r.left_out.len()) } "centres left out" }
                    div.card { div.big { (r.unpublished) } "practices not published" }
                }
                h2 { "Centres left out" }
                @if r.left_out.is_empty() { (layout::none("none")) } @else {
                    table {
                        thead { tr { th { "Account" } th { "Practice" } th { "Why" } } }
                        tbody {
                            @for l in &r.left_out {
                                tr {
                                    td { a href={ "/console/accounts/" (l.account) } { (l.account) } }
                                    td { a href={ "/console/practices/" (l.practice) } { (l.practice) } }
                                    td { (l.reason) }
                                }
                            }
                        }
                    }
                }
                h2 { "Visit motives not published" }
                p.muted { "Offered, but without a mapping in " code { "export.motives" } " to the published vocabulary." }
                @if r.unmapped_motives.is_empty() { (layout::none("none")) } @else {
                    ul { @for m in &r.unmapped_motives { li { code { (m) } } } }
                }
                h2 { "Files" }
                ul { @for f in &r.files { li { code { (f) } } } }
                @if !r.removed.is_empty() {
                    p { "Removed (no centre left in their department): " @for f in &r.removed { code { (f) } " " } }
                }
            }
        }
    };
    layout::page(&ctx, "Open data", body)
}
