//! OpenAPI schemas of values whose rules a plain type cannot say: an IANA time zone (the
//! exact list the host accepts), a cron expression (a custom `cron` format), a
//! confirmation (`true` only) and a component's bytes; and whole numbers as JSON Schema
//! counts them ([`whole_number`]). Used by the `utoipa` derives and
//! annotations of the service's request types and the API.

use serde::Deserialize;
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

/// A component's bytes, as uploaded.
pub struct ComponentBytes;

impl utoipa::PartialSchema for ComponentBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/wasm")
            .description(Some(
                "A WebAssembly component (wasm32-wasip2) implementing the connector world",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ComponentBytes {}

/// `true`, and nothing else: a destructive request says that it means it.
pub struct Confirmed;

impl utoipa::PartialSchema for Confirmed {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Boolean)
            .enum_values(Some([true]))
            .into()
    }
}

impl utoipa::ToSchema for Confirmed {}

/// Deserialises a whole number written either way JSON allows (`12` or `12.0`: JSON
/// Schema's `integer` admits both), refusing fractions.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "{n} is not a whole number"
        ))),
    }
}

/// [`whole_number`] for an optional field.
pub fn whole_number_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] i64);
    Ok(Option::<Whole>::deserialize(d)?.map(|w| w.0))
}

/// The first field of `value` whose text breaks the `pattern` its schema gives, if any:
/// the server enforces the very patterns the OpenAPI document publishes (compiled once
/// per type).
pub fn pattern_breach<T>(value: &T) -> Option<String>
where
    T: utoipa::PartialSchema + serde::Serialize + 'static,
{
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Patterns = Arc<Vec<(String, regex::Regex)>>;
    static COMPILED: OnceLock<Mutex<HashMap<TypeId, Patterns>>> = OnceLock::new();
    let patterns = COMPILED
        .get_or_init(Default::default)
        .lock()
        .expect("patterns lock")
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let schema = serde_json::to_value(T::schema()).expect("a schema");
            let fields = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Arc::new(
                fields
                    .into_iter()
                    .filter_map(|(name, field)| {
                        let text = field["pattern"].as_str()?;
                        Some((name, regex::Regex::new(text).expect("a valid pattern")))
                    })
                    .collect(),
            )
        })
        .clone();
    let json = serde_json::to_value(value).ok()?;
    patterns.iter().find_map(|(name, pattern)| {
        let text = json.get(name)?.as_str()?;
        (!pattern.is_match(text)).then(|| name.clone())
    })
}
