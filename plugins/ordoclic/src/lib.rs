//! `ordoclic`: the passerelle connector for Ordoclic (pharmacies' and practices'
//! booking pages).
//!
//! Availability only: Ordoclic's practice API is not public, so the manifest declares
//! no secret and the connector emits no appointments.
//!
//! One stream: the free times of one public profile (`profile`: the slug ending its
//! booking URL). [`profile`] reads the entity, its professionals and its booking
//! settings (`any` means bookable by phone only: no online slot, not drift) and its
//! reasons (only those `canBookOnline`); [`slots`] asks each professional's free times
//! for each reason with `POST /v1/solar/slots/availableSlots`, following
//! `nextAvailableSlotDate` when a range is empty.

pub mod profile;
pub mod slots;

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::Window;
use passerelle_sdk::{
    parameter, Account, Connector, Manifest, RateLimit, Summary, SyncError, SyncRequest,
};

/// Ordoclic's API.
pub const API: &str = "https://api.ordoclic.fr";

struct Ordoclic;

impl Connector for Ordoclic {
    fn describe() -> Manifest {
        Manifest {
            name: "ordoclic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            platform: "Ordoclic".into(),
            allowed_hosts: vec![API.into()],
            rate_limit: RateLimit {
                requests_per_second: 2,
                burst: 4,
            },
            settings: vec![parameter(
                "profile",
                "public profile slug: the end of the booking URL (…/pharmacie/pharmacie-oceane-paris)",
                true,
            )],
            secrets: vec![],
        }
    }

    fn check(account: Account) -> Result<(), SyncError> {
        let slug = account.setting("profile")?;
        if slug.is_empty()
            || !slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SyncError::InvalidConfig(
                "setting `profile` must be a profile slug: lower-case letters, digits and dashes"
                    .into(),
            ));
        }
        Ok(())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        Ordoclic::check(req.account.clone())?;
        // Availability only: asked from the run's clock, never for days already past.
        let window = Window::parse(&req.window)?.from_now();
        let profile = profile::fetch(req.account.setting("profile")?)?;
        if profile.phone_only() {
            let message = "bookable by phone only: no online availability".to_string();
            return Ok(passerelle_sdk::summary(message));
        }
        let reasons = profile::reasons(&profile.entity_id)?;
        let online: Vec<&profile::Reason> = reasons.iter().filter(|r| r.can_book_online).collect();
        let mut found = slots::Found::default();
        for professional in &profile.public_professionals {
            for reason in &online {
                slots::sync(&profile, professional, reason, &window, &mut found)?;
            }
        }
        let message = format!(
            "{} bookable times for {} of {} reasons in {} slot requests",
            found.slots,
            online.len(),
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
        "{}/../../../shared/fixtures/vitemadose/fixtures/ordoclic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must be beside the checkout)"))
}

passerelle_sdk::export_connector!(Ordoclic);
