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
        connectors::list,
        connectors::upload_any,
        connectors::rejections,
        connectors::upload,
        connectors::approve,
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
    modifiers(&BearerAuth),
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
