//! `mapharma`: the passerelle connector for Mapharma (pharmacies' booking pages).
//!
//! Availability only: Mapharma has no practice API that passerelle could describe
//! honestly (its pharmacists book through the same public pages), so the manifest
//! declares no secret and the connector emits no appointments.
//!
//! One stream: the free times of one campaign of one pharmacy (`campaign` and `option`,
//! the `c=` and `l=` of its booking URL). `GET /api/public/calendar/{campaign}/{day}/
//! {option}` answers a map of days (`YYYY-MM-DD`) to free times (`HH:MM`, local to the
//! pharmacy: Europe/Paris) from `day` on, a few days at a time; the connector asks again
//! from the day after the last one it got, until the window's end or an empty answer.
//! A time with `places_dispo: 0` is full, not bookable.

pub mod calendar;

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::Window;
use passerelle_sdk::{
    parameter, Account, Connector, Manifest, RateLimit, Summary, SyncError, SyncRequest,
};

/// Mapharma's site and API.
pub const SITE: &str = "https://mapharma.net";

struct Mapharma;

impl Connector for Mapharma {
    fn describe() -> Manifest {
        Manifest {
            name: "mapharma".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            platform: "Mapharma".into(),
            allowed_hosts: vec![SITE.into()],
            rate_limit: RateLimit {
                requests_per_second: 2,
                burst: 4,
            },
            settings: vec![
                parameter(
                    "campaign",
                    "campaign id: the c= of the pharmacy's booking URL (…?c=60&l=1)",
                    true,
                ),
                parameter(
                    "option",
                    "option id: the l= of the pharmacy's booking URL (…?c=60&l=1)",
                    true,
                ),
            ],
            secrets: vec![],
        }
    }

    fn check(account: Account) -> Result<(), SyncError> {
        for name in ["campaign", "option"] {
            let value = account.setting(name)?;
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SyncError::InvalidConfig(format!(
                    "setting `{name}` must be a number (the {} of the booking URL)",
                    if name == "campaign" { "c=" } else { "l=" }
                )));
            }
        }
        Ok(())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        Mapharma::check(req.account.clone())?;
        // Availability only: asked from the run's clock, never for days already past.
        let window = Window::parse(&req.window)?.from_now();
        let campaign = req.account.setting("campaign")?;
        let option = req.account.setting("option")?;
        let found = calendar::sync(campaign, option, &window)?;
        Ok(passerelle_sdk::summary(format!(
            "{} bookable times in {} calendar requests",
            found.slots, found.requests
        )))
    }
}

passerelle_sdk::export_connector!(Mapharma);
