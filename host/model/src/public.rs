//! A practice's public metadata: what the open-data export (ViteMaDose's format)
//! publishes about it — never anything about a patient.

use serde::{Deserialize, Serialize};

/// Where a practice is and how the public books it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicInfo {
    /// The French department code (`75`, `2A`, `971`…); the export's file name.
    #[schema(pattern = "^([0-9]{2}|2[AB]|97[1-8])$")]
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
