//! `doctolib`: the passerelle connector for Doctolib.
//!
//! Two streams per account, both scoped to it:
//! - [`appointments`]: the practice's appointments with their patients, through the
//!   practice API (needs the `api-token` secret and the `profile-id` setting), incremental
//!   from the cursor;
//! - [`availability`]: public availability of the account's centre (`centre` setting),
//!   re-read every run (the host keeps it as a snapshot of the window).
//!
//! Responses are parsed through [`api`]'s types, so a changed shape is `schema-drift`
//! naming the endpoint and JSON path.

pub mod api;
pub mod appointments;
pub mod availability;

use passerelle_sdk::account::AccountExt;
use passerelle_sdk::time::Window;
use passerelle_sdk::{
    info, parameter, Account, Connector, Manifest, RateLimit, Summary, SyncError, SyncRequest,
};

/// Public booking site (booking documents and availabilities).
pub const WWW: &str = "https://www.doctolib.fr";
/// Practice API.
pub const PARTNERS: &str = "https://partners.doctolib.fr";

/// The version `describe()` reports. The `start-date-v2` build (the fixed connector the
/// hot-swap tests install while the simulator renames `start_date`) is the next minor
/// version.
pub const VERSION: &str = if cfg!(feature = "silently-wrong") {
    "0.3.0"
} else if cfg!(feature = "start-date-v2") {
    "0.2.0"
} else {
    env!("CARGO_PKG_VERSION")
};

struct Doctolib;

impl Connector for Doctolib {
    fn describe() -> Manifest {
        Manifest {
            name: "doctolib".into(),
            version: VERSION.into(),
            platform: "Doctolib".into(),
            allowed_hosts: vec![WWW.into(), PARTNERS.into()],
            rate_limit: RateLimit {
                requests_per_second: 20,
                burst: 40,
            },
            settings: vec![
                parameter(
                    "centre",
                    "booking slug of the practice's page: www.doctolib.fr/booking/<centre>.json",
                    true,
                ),
                parameter(
                    "profile-id",
                    "practice API profile id (needed with the api-token secret)",
                    false,
                ),
            ],
            secrets: vec![parameter(
                "api-token",
                "practice API bearer token; without it only public availability is synced",
                false,
            )],
        }
    }

    fn check(account: Account) -> Result<(), SyncError> {
        account.setting("centre")?;
        if account.has_secret("api-token") {
            account.setting("profile-id")?;
        }
        Ok(())
    }

    fn sync(req: SyncRequest) -> Result<Summary, SyncError> {
        Doctolib::check(req.account.clone())?;
        let window = Window::parse(&req.window)?;
        let account = &req.account;
        let mut cursor = req.cursor.clone();
        let mut parts = Vec::new();
        if account.has_secret("api-token") {
            let found = appointments::sync(&req, account.setting("profile-id")?, &window)?;
            cursor = found.cursor.or(cursor);
            parts.push(format!("{} appointments read", found.appointments));
        } else {
            info!("no api-token secret: public availability only");
        }
        // Availability from the run's clock: the window's past is for appointments.
        let found = availability::sync(account.setting("centre")?, &window.from_now())?;
        parts.push(format!(
            "{} bookable slots in {} availability requests",
            found.slots, found.requests
        ));
        Ok(Summary {
            cursor,
            message: Some(parts.join(", ")),
        })
    }
}

passerelle_sdk::export_connector!(Doctolib);
