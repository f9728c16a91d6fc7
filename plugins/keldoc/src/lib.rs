//! `keldoc`: the passerelle connector for Keldoc (clinics' and cabinets' booking pages).
//!
//! Availability only: Keldoc's practice software has no API that passerelle could
//! describe honestly, so the manifest declares no secret and the connector emits no
//! appointments.
//!
//! One stream: the free times of one cabinet of a clinic, for every motive it offers
//! online. [`cabinet`] reads the cabinet's name and its motives (grouped in
//! categories, each with the agendas that take it); [`timetable`] asks each motive's
//! timetable a few days at a time and follows Keldoc's "next availability" jumps. A
//! motive Keldoc answers with a phone number is bookable by phone only: no online
//! slot, not drift.

pub mod cabinet;
pub mod timetable;

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::Window;
use passerelle_sdk::{
    parameter, Account, Connector, Manifest, RateLimit, Summary, SyncError, SyncRequest,
};

/// Keldoc's booking API (clinics, cabinets, motives).
pub const BOOKING: &str = "https://booking.keldoc.com";
/// Keldoc's site, which answers the timetables.
pub const SITE: &str = "https://www.keldoc.com";

/// The settings that name the cabinet, with what they are in Keldoc's URLs.
const SETTINGS: [(&str, &str); 3] = [
    (
        "clinic",
        "clinic id (Keldoc's `searches/resource` answer: its `id`)",
    ),
    (
        "specialty",
        "specialty id (the `specialty=` of the booking URL)",
    ),
    ("cabinet", "cabinet id (the `cabinet=` of the booking URL)"),
];

struct Keldoc;

impl Connector for Keldoc {
    fn describe() -> Manifest {
        Manifest {
            name: "keldoc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            platform: "Keldoc".into(),
            allowed_hosts: vec![BOOKING.into(), SITE.into()],
            rate_limit: RateLimit {
                requests_per_second: 2,
                burst: 4,
            },
            settings: SETTINGS
                .iter()
                .map(|(name, what)| parameter(name, what, true))
                .collect(),
            secrets: vec![],
        }
    }

    fn check(account: Account) -> Result<(), SyncError> {
        for (name, _) in SETTINGS {
            let value = account.setting(name)?;
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SyncError::InvalidConfig(format!(
                    "setting `{name}` must be a number (Keldoc's {name} id)"
                )));
            }
        }
        Ok(())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        Keldoc::check(req.account.clone())?;
        // Availability only: asked from the run's clock, never for days already past.
        let window = Window::parse(&req.window)?.from_now();
        let ids = cabinet::Ids {
            clinic: req.account.setting("clinic")?,
            specialty: req.account.setting("specialty")?,
            cabinet: req.account.setting("cabinet")?,
        };
        let cabinet = cabinet::fetch(&ids)?;
        let mut found = timetable::Found::default();
        for motive in cabinet.motives() {
            timetable::sync(&cabinet, motive, &window, &mut found)?;
        }
        let message = format!(
            "{} bookable times for {} motives ({} by phone only) in {} timetable requests",
            found.slots, found.motives, found.phone_only, found.requests
        );
        Ok(passerelle_sdk::summary(message))
    }
}

/// A recorded response of ViteMaDose's, read from `../shared` beside the checkout (a
/// missing file fails the test with its path: never a silent skip).
#[cfg(test)]
pub(crate) fn recorded(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/fixtures/vitemadose/fixtures/keldoc/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must be beside the checkout)"))
}

passerelle_sdk::export_connector!(Keldoc);
