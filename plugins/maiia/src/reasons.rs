//! The centre's consultation reasons, and which of them the public can book.

use passerelle_sdk::http::get;
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::SyncError;

use crate::{page, SITE};

const ENDPOINT: &str = "GET /api/pat-public/consultation-reason-hcd";

/// A consultation reason (`Première injection …`).
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Reason {
    pub id: String,
    pub name: String,
    /// Who may book it: `PUBLIC` is anyone; anything else (the centre's own patients,
    /// a referral) is not bookable from the public pages.
    pub patient_limitation: String,
    /// `PHYSICAL` (at the centre) or a teleconsultation.
    pub consultation_type: String,
}

impl Reason {
    /// Whether its free times are public availability.
    pub fn bookable(&self) -> bool {
        self.patient_limitation == "PUBLIC"
    }

    /// Where it takes place, when it is at the centre.
    pub fn physical(&self) -> bool {
        self.consultation_type == "PHYSICAL"
    }
}

/// Every consultation reason of the centre.
pub fn fetch(center: &str) -> Result<Vec<Reason>, SyncError> {
    let mut reasons = Vec::new();
    page::all(
        |_| {
            get(format!("{SITE}/api/pat-public/consultation-reason-hcd"))
                .endpoint(ENDPOINT)
                .query("rootCenterId", center)
        },
        |items| {
            reasons.extend(items);
            Ok(())
        },
    )?;
    Ok(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_sdk::drift;

    #[test]
    fn the_recorded_reasons_read_and_are_all_public() {
        let body = crate::recorded("consultation-reason-hcd.json");
        let page: page::Page<Reason> = drift::parse(ENDPOINT, &body).unwrap();
        assert_eq!((page.items.len(), page.total), (10, 10));
        assert!(page.items.iter().all(|r| r.bookable() && r.physical()));
    }

    #[test]
    fn a_reason_kept_for_some_patients_is_left_out() {
        let body = br#"{"items": [{"id": "a", "name": "n", "patientLimitation": "KNOWN_PATIENTS", "consultationType": "PHYSICAL"}], "total": 1}"#;
        let page: page::Page<Reason> = drift::parse(ENDPOINT, body).unwrap();
        assert!(!page.items[0].bookable());
    }
}
