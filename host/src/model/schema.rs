//! OpenAPI schemas of values whose rules a plain type cannot say: an IANA time zone (the
//! exact list the host accepts) and a cron expression (a custom `cron` format). Used by
//! the `utoipa` derives of the service's request types.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// An IANA time zone name, as the host accepts it.
pub struct TimeZone;

impl PartialSchema for TimeZone {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An IANA time zone name, such as Europe/Paris."))
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .into()
    }
}

impl ToSchema for TimeZone {}

/// A five-field cron expression (minute hour day-of-month month day-of-week), or null
/// for the default schedule where that is allowed.
pub fn cron_or_null() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::Custom("cron".into())))
        .description(Some(
            "Five-field cron expression in the practice's time zone (minute hour day-of-month month day-of-week); null: the default schedule.",
        ))
        .examples([serde_json::json!("30 2 * * 1-5")])
}
