//! `/openapi.json` from the handlers' annotations (utoipa), and `/docs`: a self-contained
//! page that renders it (Swagger UI's bundle would need a download at build time).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{alerts, anomalies, summary, health, ingestion, keys, live, metadata, readings, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "manifold API", description = "Equipment metadata, HTTP ingestion, readings and anomaly scores of the manifold data plane."),
    paths(
        health::basic, health::live, health::ready,
        users::register, users::me, users::patch, users::usage, keys::create, keys::list, keys::revoke,
        metadata::create, metadata::list, metadata::get, metadata::patch, metadata::delete,
        ingestion::ingest, ingestion::batch, ingestion::latest,
        readings::readings,
        anomalies::history, anomalies::latest, summary::summary, live::scores,
        alerts::of_system, alerts::ack,
    ),
    modifiers(&Security),
    tags((name = "health"), (name = "users"), (name = "metadata"), (name = "ingestion"), (name = "readings"), (name = "anomalies"), (name = "alerts")),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        let error = || {
            ResponseBuilder::new()
                .description("An error: `{\"error\": {code, message, field?}}`")
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten() {
                // Handler names repeat across modules (`latest`, `list`); generated clients need unique ids.
                let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
                if let Some(id) = operation.operation_id.as_mut() {
                    *id = format!("{tag}_{id}");
                }
                // Answers every authenticated route can give, from the layers rather than the handler.
                if operation.security.is_some() {
                    for status in ["429", "503"] {
                        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(error()));
                    }
                }
            }
        }
    }
}

pub const DOCS_PAGE: &str = include_str!("docs.html");
