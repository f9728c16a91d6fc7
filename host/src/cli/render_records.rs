//! How the records read back read as text: appointment and slot pages, the change
//! feed, webhook subscriptions and the open-data export (the rest of the
//! command line's output is in [`super::render`]).

use super::printable::printable;
use passerelle_model::feed::ChangeKind;
use passerelle_service::feed::ChangePage;
use passerelle_service::records::{AppointmentPage, AppointmentView, SlotPage};
use passerelle_service::subscriptions::{CreatedSubscription, SubscriptionView};

/// A page of appointments, a header row first.
pub fn appointments(page: &AppointmentPage, mut line: impl FnMut(String)) {
    if page.items.is_empty() {
        line("no appointments stored here (yet): run `passerelle sync PRACTICE`".into());
    } else {
        line(format!(
            "{:<16} {:<14} {:<26} {:<10} {:<24} {:<30} patient",
            "account", "id", "starts", "status", "practitioner", "motive"
        ));
    }
    for a in &page.items {
        line(appointment_line(a));
    }
    if let Some(next) = &page.next {
        line(format!("… more: --after {next}"));
    }
}

/// A page of an account's slots, a header row first.
pub fn slots(account: &str, page: &SlotPage, mut line: impl FnMut(String)) {
    if page.items.is_empty() {
        line(format!("no slots stored for {account}"));
    } else {
        line(format!(
            "{:<26} {:<26} {:<24} place",
            "starts", "practitioner", "motive"
        ));
    }
    for s in &page.items {
        line(format!(
            "{:<26} {:<26} {:<24} {}",
            s.starts_at,
            printable(s.practitioner.as_deref().unwrap_or("-")),
            printable(s.visit_motive.as_deref().unwrap_or("-")),
            printable(s.place.as_deref().unwrap_or("-"))
        ));
    }
    if let Some(next) = &page.next {
        line(format!("… more: --after {next}"));
    }
}

/// One stored appointment; the patient in full if the page carries it, else initials.
fn appointment_line(a: &AppointmentView) -> String {
    let patient = match &a.patient {
        None => "-".to_string(),
        Some(p) => match (&p.first_name, &p.last_name) {
            (Some(first), Some(last)) => format!(
                "{first} {last} ({}) {} {}",
                p.birth_date.as_deref().unwrap_or("?"),
                p.phone.as_deref().unwrap_or("-"),
                p.email.as_deref().unwrap_or("-")
            ),
            _ => p.initials.clone(),
        },
    };
    printable(&format!(
        "{:<16} {:<14} {:<26} {:<10} {:<24} {:<30} {}{}",
        a.account_id,
        a.external_id,
        a.starts_at,
        a.status,
        a.practitioner.as_deref().unwrap_or("-"),
        a.visit_motive.as_deref().unwrap_or("-"),
        patient,
        match &a.deleted_reason {
            Some(why) => format!("  [{why}]"),
            None => String::new(),
        }
    ))
}

/// One line per change, then where to go on from.
pub fn changes(page: &ChangePage, mut line: impl FnMut(String)) {
    if page.changes.is_empty() {
        line(format!("no changes after this point (head {})", page.head));
    }
    for c in &page.changes {
        let what = match (c.kind, &c.appointment, &c.slot) {
            (ChangeKind::Appointment, Some(a), _) => format!(
                "{} {} {}",
                a.starts_at,
                a.status,
                a.patient
                    .as_ref()
                    .map(|p| match (&p.first_name, &p.last_name) {
                        (Some(f), Some(l)) => printable(&format!("{f} {l}")),
                        _ => p.initials.clone(),
                    })
                    .unwrap_or_default()
            ),
            (ChangeKind::Slot, _, Some(s)) => format!(
                "{} {}",
                s.starts_at,
                printable(s.visit_motive.as_deref().unwrap_or("-"))
            ),
            _ => String::new(),
        };
        line(format!(
            "{:>8} {:<11} {:<10} {:<16} {:<20} {} {}",
            c.seq,
            c.kind.as_str(),
            c.op.as_str(),
            c.practice_id,
            c.account_id,
            printable(&c.external_id),
            what
        ));
    }
    if page.more {
        line(format!("… more: --after {}", page.next_after));
    } else {
        line(format!(
            "up to date: next time, --after {}",
            page.next_after
        ));
    }
}

pub fn added(s: &CreatedSubscription, mut line: impl FnMut(String)) {
    line(format!(
        "added subscription {} → {} (delivers changes after {})",
        s.subscription.id, s.subscription.url, s.subscription.delivered_through
    ));
    line(format!("signing secret (shown once): {}", s.secret));
    line("the receiver verifies webhook-id, webhook-timestamp and webhook-signature with it (Standard Webhooks)".into());
}

pub fn subscriptions(subs: &[SubscriptionView], mut line: impl FnMut(String)) {
    if subs.is_empty() {
        line("no subscriptions: add one with `passerelle subscriptions add URL`".into());
        return;
    }
    for s in subs {
        let scope = if s.practices.is_empty() {
            "every practice".to_string()
        } else {
            s.practices.join(", ")
        };
        line(format!(
            "{} {} [{}] {} — delivered through {} ({} changes)",
            s.id,
            s.url,
            s.state.as_str(),
            scope,
            s.delivered_through,
            s.delivered_changes
        ));
        if let Some(error) = &s.last_error {
            line(format!(
                "  {} failed attempt(s), last: {}{}",
                s.attempts,
                error,
                s.next_attempt_at
                    .as_deref()
                    .map(|t| format!("; next at {t}"))
                    .unwrap_or_default()
            ));
        }
    }
}

pub fn exported(r: &passerelle_service::export::ExportReport, mut line: impl FnMut(String)) {
    line(format!(
        "wrote {}: {} centres in {} departments, {} with availability, {} bookable slots",
        r.dir, r.centres, r.departments, r.available, r.appointments
    ));
    for file in &r.files {
        line(format!("  {file}"));
    }
    if r.unpublished > 0 {
        line(format!(
            "{} practices have no public metadata and were left out (`passerelle practices set-public`)",
            r.unpublished
        ));
    }
    for l in &r.left_out {
        line(format!(
            "left out: account {} of practice {}: {}",
            l.account, l.practice, l.reason
        ));
    }
    if !r.unmapped_motives.is_empty() {
        let motives: Vec<String> = r
            .unmapped_motives
            .iter()
            .map(|m| format!("`{}`", printable(m)))
            .collect();
        line(format!(
            "not published in vaccine_type (no mapping in export.motives): {}",
            motives.join(", ")
        ));
    }
    for name in &r.removed {
        line(format!("removed {name}: no centre left in its department"));
    }
}
