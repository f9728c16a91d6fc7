//! `maiia`: the passerelle connector for Maiia (centres' and practitioners' booking
//! pages).
//!
//! Availability only: Maiia's practice API is not public, so the manifest declares no
//! secret and the connector emits no appointments.
//!
//! One stream: the free times of one centre. [`reasons`] reads the centre's
//! consultation reasons and leaves out those the public cannot book (see
//! [`reasons::Reason::bookable`]); [`availability`] asks each reason's free times in
//! the window, page by page. Both endpoints page the same way ([`page`]).

pub mod availability;
pub mod page;
pub mod reasons;

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::Window;
use passerelle_sdk::{
    parameter, Account, Connector, Manifest, RateLimit, Summary, SyncError, SyncRequest,
};

/// Maiia's site and public API.
pub const SITE: &str = "https://www.maiia.com";

struct Maiia;

impl Connector for Maiia {
    fn describe() -> Manifest {
        Manifest {
            name: "maiia".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            platform: "Maiia".into(),
            allowed_hosts: vec![SITE.into()],
            rate_limit: RateLimit {
                requests_per_second: 3,
                burst: 6,
            },
            settings: vec![parameter(
                "center",
                "centre id: 24 hexadecimal digits (the `centerId` of Maiia's API, e.g. 5ffc744c68dedf073a5b87a2)",
                true,
            )],
            secrets: vec![],
        }
    }

    fn check(account: Account) -> Result<(), SyncError> {
        let center = account.setting("center")?;
        if center.len() != 24 || !center.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SyncError::InvalidConfig(
                "setting `center` must be Maiia's centre id: 24 hexadecimal digits".into(),
            ));
        }
        Ok(())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        Maiia::check(req.account.clone())?;
        // Availability only: asked from the run's clock, never for days already past.
        let window = Window::parse(&req.window)?.from_now();
        let center = req.account.setting("center")?;
        let reasons = reasons::fetch(center)?;
        let bookable: Vec<&reasons::Reason> = reasons.iter().filter(|r| r.bookable()).collect();
        let mut found = availability::Found::default();
        for reason in &bookable {
            availability::sync(center, reason, &window, &mut found)?;
        }
        let message = format!(
            "{} bookable times for {} of {} consultation reasons in {} availability requests",
            found.slots,
            bookable.len(),
            reasons.len(),
            found.requests
        );
        Ok(passerelle_sdk::summary(message))
    }
}

/// A recorded response of ViteMaDose's, read from `../shared` beside the checkout (a
/// missing file fails the test with its path: never a silent skip).
#[cfg(test)]
pub(crate) fn recorded(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/fixtures/vitemadose/fixtures/maiia/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must be beside the checkout)"))
}

passerelle_sdk::export_connector!(Maiia);
