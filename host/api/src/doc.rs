//! The OpenAPI document of the admin API, generated from the handlers' annotations and
//! the service's own types (utoipa): the constraints the server enforces (ids, non-blank
//! names, non-empty secrets, limits) and every status each endpoint answers. Served at
//! `/openapi.json`; `docs/openapi.json` is the same document, checked by a test
//! (`PASSERELLE_BLESS=1` rewrites it).

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{connectors, feed, practices, records, runs};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "passerelle admin API",
        description = "The admin API of `passerelle serve`. Every endpoint but /healthz needs `Authorization: Bearer <token>` (daemon.token, or the admin-token file in the data directory). Errors are {\"error\": {\"code\", \"message\"}}."
    ),
    paths(
        super::healthz,
        super::openapi,
        runs::metrics,
        practices::list,
        practices::create,
        practices::show,
        practices::update,
        practices::delete,
        practices::list_accounts,
        practices::create_account,
        runs::sync_now,
        records::appointments,
        records::slots,
        practices::all_accounts,
        practices::show_account,
        practices::update_account,
        practices::delete_account,
        practices::check_account,
        practices::set_secret,
        practices::delete_secret,
        runs::list,
        runs::daemons,
        runs::show,
        runs::cassette,
        connectors::list,
        connectors::upload_any,
        connectors::rejections,
        connectors::upload,
        connectors::approve,
        connectors::shadow,
        connectors::rollback,
        connectors::start_canary,
        connectors::stop_canary,
        connectors::promote,
        connectors::paused,
        connectors::quarantine,
        connectors::resume,
        feed::changes,
        feed::list,
        feed::add,
        feed::show,
        feed::remove,
        feed::replay,
    ),
    components(schemas(passerelle_model::schema::TimeZone, passerelle_model::schema::Confirmed)),
    modifiers(&BearerAuth, &ScopeAnswers),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The `bearer` security scheme every endpoint but `/healthz` uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What every operation may answer beyond its own statuses, by the API's shared rules:
/// 403 where the method needs the `admin` scope ([`super::scope_for`]) and a `read`
/// token is refused; 429 where too many wrong tokens came from the caller's address
/// (before any token is looked at; `Retry-After` says when to try again).
struct ScopeAnswers;

impl Modify for ScopeAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use axum::http::Method;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            for (method, operation) in [
                (Method::GET, &mut item.get),
                (Method::HEAD, &mut item.head),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ] {
                let Some(operation) = operation else { continue };
                let answers = &mut operation.responses.responses;
                if super::scope_for(&method) == passerelle_service::principal::Scope::Admin {
                    answers.entry("403".into()).or_insert_with(|| {
                        error("The token lacks the scope (this operation needs `admin`)").into()
                    });
                }
                answers.entry("429".into()).or_insert_with(|| {
                    let mut r = error("Too many wrong tokens from this address (code too-many-wrong-tokens); Retry-After says when to try again");
                    r.headers.insert(
                        "Retry-After".into(),
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer))
                            .description(Some("Seconds"))
                            .build(),
                    );
                    r.into()
                });
            }
        }
    }
}

/// The document as served: pretty JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        text.push('\n');
        text
    })
}
