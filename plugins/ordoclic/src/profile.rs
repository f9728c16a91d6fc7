//! The public profile (entity, professionals, booking settings) and its reasons.

use passerelle_sdk::http::{encode, get};
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::serde_json::Value;
use passerelle_sdk::SyncError;

use crate::API;

const PROFILE: &str = "GET /v1/public/entities/profile/{slug}";
const REASONS: &str = "GET /v1/solar/entities/{entityId}/reasons";

/// A public profile.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Profile {
    pub entity_id: String,
    pub name: String,
    pub city: String,
    pub public_professionals: Vec<Professional>,
    /// Labelled settings of any shape; only `booking_settings` is read.
    pub attribute_values: Vec<Attribute>,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Professional {
    pub id: String,
    pub full_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Attribute {
    pub label: String,
    pub value: Value,
}

impl Profile {
    /// `booking_settings.option` is `any` when the profile takes bookings by phone only
    /// (`internal`: online through Ordoclic).
    pub fn phone_only(&self) -> bool {
        self.attribute_values
            .iter()
            .filter(|a| a.label == "booking_settings")
            .any(|a| a.value.get("option").and_then(Value::as_str) == Some("any"))
    }

    /// The place slots are at: the profile's name and town.
    pub fn place(&self) -> String {
        match self.city.trim() {
            "" => self.name.trim().to_string(),
            city => format!("{} ({city})", self.name.trim()),
        }
    }
}

/// A reason (`Vaccination AstraZeneca - Injection 1`); only those bookable online are
/// asked for slots.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", rename_all = "camelCase")]
pub struct Reason {
    pub id: String,
    pub name: String,
    pub can_book_online: bool,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
struct Reasons {
    reasons: Vec<Reason>,
}

pub fn fetch(slug: &str) -> Result<Profile, SyncError> {
    get(format!("{API}/v1/public/entities/profile/{}", encode(slug)))
        .endpoint(PROFILE)
        .json()
}

pub fn reasons(entity_id: &str) -> Result<Vec<Reason>, SyncError> {
    let answer: Reasons = get(format!(
        "{API}/v1/solar/entities/{}/reasons",
        encode(entity_id)
    ))
    .endpoint(REASONS)
    .json()?;
    Ok(answer.reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorded;
    use passerelle_sdk::drift;

    #[test]
    fn the_recorded_profiles_read_with_their_booking_settings() {
        let body = recorded("fetchslot-profile.json");
        let p: Profile = drift::parse(PROFILE, &body).unwrap();
        assert!(!p.phone_only());
        assert_eq!(p.place(), "Pharmacie Oceane (Paris)");
        assert_eq!(p.public_professionals[0].full_name, "Laurent HALWANI");
        let p: Profile = drift::parse(PROFILE, &recorded("fetchslot-profile2.json")).unwrap();
        assert!(p.phone_only());
        let p: Profile = drift::parse(PROFILE, &recorded("lancelot_profile.json")).unwrap();
        assert!(!p.phone_only());
    }

    #[test]
    fn the_recorded_reasons_read_and_three_are_bookable_online() {
        let body = recorded("fetchslot-reasons.json");
        let r: Reasons = drift::parse(REASONS, &body).unwrap();
        let online: Vec<&str> = r
            .reasons
            .iter()
            .filter(|r| r.can_book_online)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            online,
            [
                "Téléconsultation",
                "Test Antigénique",
                "Vaccination AstraZeneca - Injection 1"
            ]
        );
    }
}
