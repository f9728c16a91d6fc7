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
    /// Checks what the schema says, for callers that did not come through it.
    pub fn validate(&self) -> Result<(), String> {
        let dep = &self.department;
        let ok_dep = (dep.len() == 2 && dep.chars().all(|c| c.is_ascii_digit()))
            || dep == "2A"
            || dep == "2B"
            || (dep.len() == 3
                && dep.starts_with("97")
                && ('1'..='8').contains(&dep.chars().nth(2).unwrap_or('0')));
        if !ok_dep {
            return Err(format!(
                "`{dep}` is not a French department code (75, 2A, 971…)"
            ));
        }
        if let Some(pc) = &self.postcode {
            if pc.len() != 5 || !pc.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("`{pc}` is not a postal code (5 digits)"));
            }
        }
        if self.latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l))
            || self
                .longitude
                .is_some_and(|l| !(-180.0..=180.0).contains(&l))
        {
            return Err("latitude is -90 to 90, longitude -180 to 180".into());
        }
        if let Some(kind) = &self.kind {
            if !["vaccination-center", "drugstore", "general-practitioner"].contains(&kind.as_str())
            {
                return Err(format!(
                    "`{kind}` is not a type: vaccination-center, drugstore, general-practitioner"
                ));
            }
        }
        if let Some(url) = &self.booking_url {
            // The pattern the OpenAPI document gives, so the two agree.
            static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
            let pattern = PATTERN.get_or_init(|| {
                use utoipa::PartialSchema;
                let schema = serde_json::to_value(PublicInfo::schema()).expect("a schema");
                let text = schema["properties"]["booking_url"]["pattern"]
                    .as_str()
                    .expect("the booking URL's pattern");
                regex::Regex::new(text).expect("a valid pattern")
            });
            if !pattern.is_match(url) || url::Url::parse(url).is_err() {
                return Err(format!(
                    "booking URL `{url}`: http:// or https://, a lower-case host name or an IPv4 address, a plain path and query"
                ));
            }
        }
        Ok(())
    }
}
