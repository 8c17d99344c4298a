//! How every registry client manifold has (the Avro encoders and decoders, `schemas register`,
//! infer's decoder, `manifold check`) reaches the schema registry: one place applies the
//! timeout, the extra CA and the credentials, so no client can forget one.

use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;

use super::CodecError;
use crate::config::{RegistryAuth, SchemaRegistryConfig};
use crate::failure::{FailureKind, classify_http_status};

/// An HTTP client builder with the registry's timeout and extra CA.
pub fn http_client_builder(config: &SchemaRegistryConfig) -> Result<reqwest::ClientBuilder, CodecError> {
    let mut builder = reqwest::Client::builder().timeout(config.timeout_ms);
    // Read and checked when the configuration loaded; an error here means the file changed since.
    let pem = config.ca_pem().map_err(|e| CodecError::Unavailable(e.to_string()))?;
    if let Some(pem) = pem {
        for certificate in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| CodecError::Unavailable(format!("schema_registry.ca_file: {e}")))? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

/// Settings for schema_registry_converter's clients: the same HTTP client and credentials.
pub fn registry_settings(config: &SchemaRegistryConfig) -> Result<SrSettings, CodecError> {
    let mut settings = SrSettings::new_builder(config.url.trim_end_matches('/').to_owned());
    settings.set_timeout(config.timeout_ms);
    match config.auth() {
        RegistryAuth::None => {}
        RegistryAuth::Basic { username, password } => {
            settings.set_basic_authorization(username, Some(password));
        }
        RegistryAuth::Bearer { token } => {
            settings.set_token_authorization(token);
        }
    }
    settings.build_with(http_client_builder(config)?).map_err(|e| CodecError::Unavailable(e.error))
}

/// A request of manifold's own (the `check` probe) with the configured credentials.
pub fn authorize(request: reqwest::RequestBuilder, config: &SchemaRegistryConfig) -> reqwest::RequestBuilder {
    match config.auth() {
        RegistryAuth::None => request,
        RegistryAuth::Basic { username, password } => request.basic_auth(username, Some(password)),
        RegistryAuth::Bearer { token } => request.bearer_auth(token),
    }
}

/// The status of a failed registry call, from the client's message ("… failed with status 500").
pub fn http_status(err: &SRCError) -> Option<u16> {
    let status = |text: &str| text.split("with status ").nth(1)?.get(..3)?.parse().ok();
    status(&err.error).or_else(|| err.cause.as_deref().and_then(status))
}

/// The registry may answer next time. The client library calls only 502 and 503 retriable and
/// files any other status as permanent, a 500 from a registry whose storage restarts too.
pub(super) fn transient(err: &SRCError) -> bool {
    err.retriable || http_status(err).is_some_and(|status| classify_http_status(status) == FailureKind::Transient)
}

/// The registry refused the credentials (HTTP 401) or their rights (403): no message is at
/// fault and retrying will not help until an operator fixes the configuration.
pub(super) fn refused_credentials(err: &SRCError) -> Option<CodecError> {
    let status = ["status 401", "status 403"].into_iter().find(|s| err.error.contains(s))?;
    Some(CodecError::Unauthorized(format!(
        "the schema registry answered HTTP {} ({}): set schema_registry.username and password, or token",
        &status[7..],
        if status.ends_with("401") { "credentials missing or wrong" } else { "the credentials lack the right" }
    )))
}

/// The error's text with its cause and the cause's own sources: a connection or TLS failure
/// says why only deep in reqwest's chain ("certificate verify failed").
pub(super) fn describe(err: &SRCError) -> String {
    let mut text = match &err.cause {
        Some(cause) => format!("{}: {cause}", err.error),
        None => err.error.clone(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let said = inner.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = inner.source();
    }
    text
}
