//! The console's charts, drawn on the server as inline SVG (no script, nothing
//! fetched): runs per quarter-hour (stacked by outcome), a platform's daily p50/p95
//! durations, an account's recent runs' durations.

use maud::{html, Markup};

use super::layout;
use passerelle_model::run::{Run, Status};
use passerelle_service::overview::QuarterHour;
use passerelle_store::durations::DayDurations;

const OK: &str = "#2e7d32";
const BAD: &str = "#c62828";
const OTHER: &str = "#9ca3af";

/// The 96 quarter-hours of the last day as stacked bars.
pub fn quarter_hours(quarters: &[QuarterHour]) -> Markup {
    let (bar, height, top, bottom) = (10.0, 140.0, 14.0, 18.0);
    let width = bar * quarters.len() as f64 + 40.0;
    let max = quarters
        .iter()
        .map(|q| q.succeeded + q.failed + q.other)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot = height - top - bottom;
    let scale = |n: i64| n as f64 / max * plot;
    html! {
        svg.chart role="img" aria-label="Runs per quarter-hour over the last 24 hours"
            width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            text x="2" y="10" { "max " (max as i64) " runs" }
            @for (i, q) in quarters.iter().enumerate() {
                @let x = 30.0 + i as f64 * bar;
                @let base = height - bottom;
                @let ok = scale(q.succeeded);
                @let bad = scale(q.failed);
                @let other = scale(q.other);
                g {
                    title { (q.start.format("%H:%M")) ": " (q.succeeded) " succeeded, " (q.failed) " failed or drifted, " (q.other) " other" }
                    rect x=(x) y=(base - ok) width=(bar - 1.0) height=(ok) fill=(OK) {}
                    rect x=(x) y=(base - ok - bad) width=(bar - 1.0) height=(bad) fill=(BAD) {}
                    rect x=(x) y=(base - ok - bad - other) width=(bar - 1.0) height=(other) fill=(OTHER) {}
                }
                @if i % 16 == 0 {
                    text x=(x) y=(height - 4.0) { (q.start.format("%H:%M")) }
                }
            }
            line x1="30" y1=(height - bottom) x2=(width - 10.0) y2=(height - bottom) stroke="#cbd5e1" {}
        }
    }
}

/// One platform's daily p50 (solid) and p95 (dashed) durations.
pub fn durations(connector: &str, days: &[DayDurations]) -> Markup {
    let (width, height, left, top, bottom) = (300.0, 120.0, 34.0, 16.0, 18.0);
    let max = days.iter().map(|d| d.p95_ms).max().unwrap_or(0).max(1) as f64;
    let plot_w = width - left - 8.0;
    let plot_h = height - top - bottom;
    let step = if days.len() > 1 {
        plot_w / (days.len() - 1) as f64
    } else {
        0.0
    };
    let point = |i: usize, ms: i64| {
        format!(
            "{:.1},{:.1}",
            left + step * i as f64,
            top + plot_h - ms as f64 / max * plot_h
        )
    };
    let line = |pick: fn(&DayDurations) -> i64| {
        days.iter()
            .enumerate()
            .map(|(i, d)| point(i, pick(d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg.chart role="img" aria-label={ (connector) ": run durations, p50 and p95 per day" }
            width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            text x="4" y="11" { (connector) " · p95 max " (layout::duration(max as i64)) }
            polyline points=(line(|d| d.p95_ms)) fill="none" stroke=(BAD) stroke-dasharray="4 3" stroke-width="1.5" {}
            polyline points=(line(|d| d.p50_ms)) fill="none" stroke="#1d4ed8" stroke-width="2" {}
            @for (i, d) in days.iter().enumerate() {
                @let (x, y) = (left + step * i as f64, top + plot_h - d.p50_ms as f64 / max * plot_h);
                circle cx=(x) cy=(y) r="2.5" fill="#1d4ed8" {
                    title { (d.day) ": " (d.runs) " runs, p50 " (layout::duration(d.p50_ms)) ", p95 " (layout::duration(d.p95_ms)) }
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text x=(left) y=(height - 4.0) { (first.day.get(5..).unwrap_or(&first.day)) }
                text x=(width - 40.0) y=(height - 4.0) { (last.day.get(5..).unwrap_or(&last.day)) }
            }
        }
    }
}

/// An account's runs (newest first as given) as bars of their duration, oldest left.
pub fn run_durations(runs: &[Run]) -> Markup {
    let finished: Vec<&Run> = runs
        .iter()
        .rev()
        .filter(|r| r.duration_ms.is_some())
        .collect();
    let (bar, height, bottom) = (8.0, 90.0, 4.0);
    let width = (bar * finished.len() as f64).max(80.0) + 8.0;
    let max = finished
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    html! {
        svg.chart role="img" aria-label="Durations of the account's recent runs"
            width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            text x="4" y="10" { "max " (layout::duration(max as i64)) }
            @for (i, r) in finished.iter().enumerate() {
                @let h = r.duration_ms.unwrap_or(0) as f64 / max * (height - 18.0);
                @let colour = match r.status { Status::Succeeded => OK, Status::Failed | Status::Drift => BAD, _ => OTHER };
                rect x=(4.0 + i as f64 * bar) y=(height - bottom - h) width=(bar - 1.0) height=(h) fill=(colour) {
                    title { "run " (r.id) ": " (r.status.as_str()) ", " (layout::duration(r.duration_ms.unwrap_or(0))) }
                }
            }
        }
    }
}
