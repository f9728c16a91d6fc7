//! Text of one practice or one account in full (`practices show`, `accounts show`, and
//! what `set-public` leaves): identity, schedule (the one schedule line every practice
//! listing uses), accounts, and what the open-data export publishes about them.

use passerelle_model::public::{Listing, PublicInfo};
use passerelle_service::practices::PracticeView;
use passerelle_store::practices::Account;

use super::printable::printable;

/// `field: value` lines of what is set, `(none)` for what is not.
fn field(line: &mut impl FnMut(String), name: &str, value: Option<String>) {
    line(format!(
        "  {name:<12} {}",
        value
            .map(|v| printable(&v))
            .unwrap_or_else(|| "(none)".into())
    ));
}

fn public_lines(public: Option<&PublicInfo>, line: &mut impl FnMut(String)) {
    let Some(p) = public else {
        line("not published in the open-data export (`passerelle practices set-public`)".into());
        return;
    };
    line("published in the open-data export:".into());
    field(line, "department", Some(p.department.clone()));
    field(line, "address", p.address.clone());
    field(line, "city", p.city.clone());
    field(line, "postcode", p.postcode.clone());
    field(
        line,
        "coordinates",
        p.latitude
            .zip(p.longitude)
            .map(|(la, lo)| format!("{la}, {lo}")),
    );
    field(line, "booking URL", p.booking_url.clone());
    field(line, "type", p.kind.clone());
}

fn listing_lines(listing: Option<&Listing>, line: &mut impl FnMut(String)) {
    match listing {
        None => line("listing: its practice's (`passerelle accounts set-public`)".into()),
        Some(l) => {
            line("listing (wins over its practice's):".into());
            field(line, "booking URL", l.booking_url.clone());
            field(line, "type", l.kind.clone());
        }
    }
}

pub fn practice(p: &PracticeView, mut line: impl FnMut(String)) {
    line(format!(
        "practice {} ({}, {})",
        p.practice.id,
        printable(&p.practice.name),
        p.practice.timezone
    ));
    line(schedule_line(p));
    public_lines(p.practice.public.as_ref(), &mut line);
    if let Some(accounts) = &p.accounts {
        if accounts.is_empty() {
            line("no accounts".into());
        }
        for a in accounts {
            line(format!(
                "account {} on {}{}",
                a.id,
                a.connector,
                a.listing
                    .as_ref()
                    .and_then(|l| l.booking_url.as_deref())
                    .map(|u| format!(", books at {}", printable(u)))
                    .unwrap_or_default()
            ));
        }
    }
}

pub fn account(a: &Account, mut line: impl FnMut(String)) {
    line(format!(
        "account {} of practice {} on {}{}",
        a.id,
        a.practice_id,
        a.connector,
        a.label
            .as_deref()
            .map(|l| format!(" ({})", printable(l)))
            .unwrap_or_default()
    ));
    let settings: Vec<String> = a
        .settings
        .iter()
        .map(|(k, v)| format!("{k}={}", printable(v)))
        .collect();
    line(format!("settings: [{}]", settings.join(" ")));
    line(format!("secrets: [{}]", a.secrets.join(" ")));
    listing_lines(a.listing.as_ref(), &mut line);
}

/// "schedule `0 3 * * *` (Europe/Paris, default), next sync …".
pub(super) fn schedule_line(p: &PracticeView) -> String {
    format!(
        "schedule `{}` ({}{}), next sync {}",
        p.effective_schedule,
        p.practice.timezone,
        if p.practice.schedule.is_none() {
            ", default"
        } else {
            ""
        },
        p.next_sync.as_deref().unwrap_or("never")
    )
}
