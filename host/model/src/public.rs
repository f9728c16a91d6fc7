//! A practice's public metadata, its accounts' own listings, and the merge patches that
//! change them: what the open-data export (ViteMaDose's format) publishes about a
//! practice — never anything about a patient.

use serde::{Deserialize, Serialize};

/// Where a practice is and how the public books it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicInfo {
    /// The French department code (`75`, `2A`, `971`…); the export's file name.
    #[schema(pattern = "^(0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5]|97[1-8])$")]
    pub department: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{5}$")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub longitude: Option<f64>,
    /// Where the public books (the platform's page for this practice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$"
    )]
    pub booking_url: Option<String>,
    /// `vaccination-center`, `drugstore`, `general-practitioner` (ViteMaDose's types).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(vaccination-center|drugstore|general-practitioner)$")]
    pub kind: Option<String>,
}

impl PublicInfo {
    /// Checks what the schema says (its patterns, its bounds), for callers that did not
    /// come through it.
    pub fn validate(&self) -> Result<(), String> {
        if super::departments::department(&self.department).is_none() {
            return Err(format!(
                "`{}` is not a French department code (75, 2A, 971…)",
                self.department
            ));
        }
        if let Some(field) = super::schema::pattern_breach(self) {
            return Err(match field.as_str() {
                "department" => format!(
                    "`{}` is not a French department code (75, 2A, 971…)",
                    self.department
                ),
                "postcode" => "a postal code is 5 digits".into(),
                "type" => "the type is vaccination-center, drugstore or general-practitioner".into(),
                "booking_url" => "the booking URL is http:// or https://, a lower-case host name or an IPv4 address, a plain path and query".into(),
                other => format!("`{other}` is not valid"),
            });
        }
        if self.latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l))
            || self
                .longitude
                .is_some_and(|l| !(-180.0..=180.0).contains(&l))
        {
            return Err("latitude is -90 to 90, longitude -180 to 180".into());
        }
        if let Some(url) = &self.booking_url {
            url::Url::parse(url).map_err(|e| format!("booking URL `{url}`: {e}"))?;
        }
        Ok(())
    }
}

/// One account's own listing on its platform: where the public books it and the kind
/// of place the platform lists it as. Each field, when set, is the account's; unset, its
/// practice's (a practice listed on several platforms has one page on each).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// Where the public books this account (its page on the platform); the same rules
    /// as a practice's `booking_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$"
    )]
    pub booking_url: Option<String>,
    /// `vaccination-center`, `drugstore`, `general-practitioner`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(vaccination-center|drugstore|general-practitioner)$")]
    pub kind: Option<String>,
}

impl Listing {
    /// Checks the fields with a practice's rules for the same fields.
    pub fn validate(&self) -> Result<(), String> {
        PublicInfo {
            department: "75".into(),
            address: None,
            city: None,
            postcode: None,
            latitude: None,
            longitude: None,
            booking_url: self.booking_url.clone(),
            kind: self.kind.clone(),
        }
        .validate()
    }

    pub fn is_empty(&self) -> bool {
        self.booking_url.is_none() && self.kind.is_none()
    }
}

/// A change to a practice's public metadata, merged over what is stored (JSON merge
/// patch): an absent field is kept, `null` removes it, a value replaces it. A practice
/// published for the first time needs a department.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5]|97[1-8])$")]
    pub department: Option<String>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub address: Option<Option<String>>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub city: Option<Option<String>>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = "^[0-9]{5}$")]
    pub postcode: Option<Option<String>>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<f64>, nullable, minimum = -90.0, maximum = 90.0)]
    pub latitude: Option<Option<f64>>,
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<f64>, nullable, minimum = -180.0, maximum = 180.0)]
    pub longitude: Option<Option<f64>>,
    /// The default booking URL of the practice's accounts (an account's own wins).
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$")]
    pub booking_url: Option<Option<String>>,
    /// The default type of the practice's accounts (an account's own wins).
    #[serde(
        default,
        rename = "type",
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = "^(vaccination-center|drugstore|general-practitioner)$")]
    pub kind: Option<Option<String>>,
}

impl From<PublicInfo> for PublicPatch {
    /// The patch that makes any record equal `info` (every field given, absent ones null).
    fn from(info: PublicInfo) -> Self {
        PublicPatch {
            department: Some(info.department),
            address: Some(info.address),
            city: Some(info.city),
            postcode: Some(info.postcode),
            latitude: Some(info.latitude),
            longitude: Some(info.longitude),
            booking_url: Some(info.booking_url),
            kind: Some(info.kind),
        }
    }
}

/// `patch` over `field`: absent keeps, `null` removes, a value replaces.
fn merge<T: Clone>(field: &mut Option<T>, patch: &Option<Option<T>>) {
    if let Some(value) = patch {
        *field = value.clone();
    }
}

/// Why a patch of public metadata does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The practice has no public record yet and the patch names no department.
    #[error("the practice is not published yet: its first public record needs a department")]
    NotPublished,
    /// A field breaks its rule (the message says which).
    #[error("{0}")]
    Invalid(String),
}

impl PublicPatch {
    /// The record `current` becomes, checked.
    pub fn apply(&self, current: Option<PublicInfo>) -> Result<PublicInfo, PatchError> {
        let mut info = match (current, &self.department) {
            (Some(mut info), department) => {
                if let Some(d) = department {
                    info.department = d.clone();
                }
                info
            }
            (None, Some(department)) => PublicInfo {
                department: department.clone(),
                address: None,
                city: None,
                postcode: None,
                latitude: None,
                longitude: None,
                booking_url: None,
                kind: None,
            },
            (None, None) => return Err(PatchError::NotPublished),
        };
        merge(&mut info.address, &self.address);
        merge(&mut info.city, &self.city);
        merge(&mut info.postcode, &self.postcode);
        merge(&mut info.latitude, &self.latitude);
        merge(&mut info.longitude, &self.longitude);
        merge(&mut info.booking_url, &self.booking_url);
        merge(&mut info.kind, &self.kind);
        info.validate().map_err(PatchError::Invalid)?;
        Ok(info)
    }
}

/// A change to an account's listing, merged the same way; a listing left empty is
/// removed (the practice's fields apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingPatch {
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z][a-z0-9]*(-[a-z0-9]+)*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$")]
    pub booking_url: Option<Option<String>>,
    #[serde(
        default,
        rename = "type",
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable, pattern = "^(vaccination-center|drugstore|general-practitioner)$")]
    pub kind: Option<Option<String>>,
}

impl ListingPatch {
    /// The listing `current` becomes (None when nothing is left), checked.
    pub fn apply(&self, current: Option<Listing>) -> Result<Option<Listing>, String> {
        let mut listing = current.unwrap_or_default();
        merge(&mut listing.booking_url, &self.booking_url);
        merge(&mut listing.kind, &self.kind);
        listing.validate()?;
        Ok((!listing.is_empty()).then_some(listing))
    }
}

/// Tells an absent field (unchanged) from `null` (removed) in a patch.
/// `double_option` for a patch object: absent (unchanged), `null` (removed), or an
/// object — never an array, which serde would read as a struct's fields in order.
pub mod patch_object {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
            None => Ok(Some(None)),
            Some(fields) => serde_json::from_value(serde_json::Value::Object(fields))
                .map(|t| Some(Some(t)))
                .map_err(D::Error::custom),
        }
    }

    pub use super::double_option::serialize;
}

pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> PublicInfo {
        PublicPatch {
            department: Some("75".into()),
            city: Some(Some("Paris".into())),
            postcode: Some(Some("75002".into())),
            booking_url: Some(Some("https://booking.example/p".into())),
            ..PublicPatch::default()
        }
        .apply(None)
        .unwrap()
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_removes_what_it_nulls() {
        let changed = PublicPatch {
            department: Some("2A".into()),
            booking_url: Some(None),
            ..PublicPatch::default()
        }
        .apply(Some(paris()))
        .unwrap();
        assert_eq!(changed.department, "2A");
        assert_eq!(changed.city.as_deref(), Some("Paris"));
        assert_eq!(changed.postcode.as_deref(), Some("75002"));
        assert_eq!(changed.booking_url, None);
        // Sent as JSON: absent and null differ.
        let patch: PublicPatch = serde_json::from_str(r#"{"city": null}"#).unwrap();
        assert_eq!(patch.city, Some(None));
        assert_eq!(patch.address, None);
        assert_eq!(patch.apply(Some(paris())).unwrap().city, None);
    }

    #[test]
    fn a_first_record_needs_a_department_and_every_record_is_checked() {
        let err = PublicPatch {
            city: Some(Some("Lyon".into())),
            ..PublicPatch::default()
        }
        .apply(None)
        .unwrap_err();
        assert_eq!(err, PatchError::NotPublished);
        let err = PublicPatch {
            postcode: Some(Some("750".into())),
            ..PublicPatch::default()
        }
        .apply(Some(paris()))
        .unwrap_err();
        assert!(
            matches!(&err, PatchError::Invalid(m) if m.contains("postal code")),
            "{err}"
        );
        let full = PublicPatch::from(paris()).apply(None).unwrap();
        assert_eq!(full, paris());
    }

    #[test]
    fn a_listing_emptied_is_gone_and_its_fields_are_checked() {
        let set = ListingPatch {
            kind: Some(Some("drugstore".into())),
            ..ListingPatch::default()
        }
        .apply(None)
        .unwrap();
        assert_eq!(set.as_ref().unwrap().kind.as_deref(), Some("drugstore"));
        let cleared = ListingPatch {
            kind: Some(None),
            ..ListingPatch::default()
        }
        .apply(set)
        .unwrap();
        assert_eq!(cleared, None);
        assert!(ListingPatch {
            kind: Some(Some("hospital".into())),
            ..ListingPatch::default()
        }
        .apply(None)
        .is_err());
    }
}
