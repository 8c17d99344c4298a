use std::path::{Path, PathBuf};

use super::*;

fn params(pairs: &[(&str, &str)]) -> TlsParams {
    let mut params = TlsParams::default();
    for (key, value) in pairs {
        params::record(&mut params, key, (*value).to_owned());
    }
    params
}

fn decide_with(params: &TlsParams, files: &[&str]) -> Result<PgTls, String> {
    let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    PgTls::decide(params, Some(Path::new("/home/op/.postgresql")), &|path| files.iter().any(|f| f == path))
}

#[test]
fn url_form_gives_the_tls_parameters_and_keeps_the_rest_as_written() {
    let url = "postgres://u:p%40ss@db:5432/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3";
    let (tls, rest) = params::split(url).unwrap();
    assert_eq!(tls.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(tls.sslrootcert.as_deref(), Some("/etc/ca.pem"));
    assert_eq!(rest, "postgres://u:p%40ss@db:5432/app?application_name=x&connect_timeout=3");
    let (_, bare) = params::split("postgresql://db/app?sslmode=require").unwrap();
    assert_eq!(bare, "postgresql://db/app");
}

#[test]
fn key_value_form_handles_quotes_escapes_and_spaces_around_equals() {
    let text = r"host=db password = 'it\'s secret' sslmode=verify-ca sslrootcert='/my certs/ca.pem' user=u";
    let (tls, rest) = params::split(text).unwrap();
    assert_eq!(tls.sslmode.as_deref(), Some("verify-ca"));
    assert_eq!(tls.sslrootcert.as_deref(), Some("/my certs/ca.pem"));
    assert_eq!(rest, r"host=db password = 'it\'s secret' user=u");
    assert!(params::split("host=db sslmode='require").unwrap_err().contains("unterminated"));
    assert!(params::split("host").unwrap_err().contains("missing"));
}

#[test]
fn the_default_is_prefer_which_tries_tls_first_then_plaintext() {
    let tls = decide_with(&TlsParams::default(), &[]).unwrap();
    assert_eq!(tls.mode, SslMode::Prefer);
    assert_eq!(tls.attempts(), &[Attempt::Tls, Attempt::Plain]);
    assert!(!tls.verifies_chain());
}

#[test]
fn allow_tries_plaintext_first_and_disable_never_tls() {
    assert_eq!(decide_with(&params(&[("sslmode", "allow")]), &[]).unwrap().attempts(), &[Attempt::Plain, Attempt::Tls]);
    assert_eq!(decide_with(&params(&[("sslmode", "disable")]), &[]).unwrap().attempts(), &[Attempt::Plain]);
}

#[test]
fn require_with_a_root_certificate_present_is_verify_ca() {
    let plain = decide_with(&params(&[("sslmode", "require")]), &[]).unwrap();
    assert_eq!((plain.mode, plain.verifies_chain()), (SslMode::Require, false));
    let default_root = decide_with(&params(&[("sslmode", "require")]), &["/home/op/.postgresql/root.crt"]).unwrap();
    assert_eq!(default_root.mode, SslMode::VerifyCa);
    assert_eq!(default_root.requested, SslMode::Require);
    assert_eq!(default_root.root_cert, Some(RootCert::File("/home/op/.postgresql/root.crt".into())));
    assert!(default_root.verifies_chain() && !default_root.verifies_host());
    let named = decide_with(&params(&[("sslmode", "require"), ("sslrootcert", "/ca.pem")]), &["/ca.pem"]).unwrap();
    assert_eq!(named.mode, SslMode::VerifyCa);
}

#[test]
fn verify_modes_need_an_existing_root_certificate() {
    let missing = decide_with(&params(&[("sslmode", "verify-full")]), &[]).unwrap_err();
    assert!(missing.contains("/home/op/.postgresql/root.crt"), "{missing}");
    let absent = decide_with(&params(&[("sslmode", "verify-ca"), ("sslrootcert", "/nope.pem")]), &[]).unwrap_err();
    assert!(absent.contains("/nope.pem") && absent.contains("does not exist"), "{absent}");
    let full = decide_with(&params(&[("sslmode", "verify-full"), ("sslrootcert", "/ca.pem")]), &["/ca.pem"]).unwrap();
    assert!(full.verifies_chain() && full.verifies_host());
    let system = decide_with(&params(&[("sslmode", "verify-full"), ("sslrootcert", "system")]), &[]).unwrap();
    assert_eq!(system.root_cert, Some(RootCert::System));
    assert!(decide_with(&params(&[("sslmode", "verify-ca"), ("sslrootcert", "system")]), &[]).is_err());
}

#[test]
fn an_unknown_mode_is_named_with_the_accepted_ones() {
    let err = decide_with(&params(&[("sslmode", "verify_full")]), &[]).unwrap_err();
    assert!(err.contains("verify_full") && err.contains("verify-full"), "{err}");
}

#[test]
fn client_certificates_come_in_pairs_and_must_exist() {
    let pair = params(&[("sslmode", "require"), ("sslcert", "/c.crt"), ("sslkey", "/c.key")]);
    let tls = decide_with(&pair, &["/c.crt", "/c.key"]).unwrap();
    assert_eq!(tls.client_cert, Some(("/c.crt".into(), "/c.key".into())));
    assert!(decide_with(&pair, &["/c.crt"]).unwrap_err().contains("/c.key"));
    assert!(decide_with(&params(&[("sslkey", "/c.key")]), &["/c.key"]).is_err());
    let defaults = decide_with(
        &TlsParams::default(),
        &["/home/op/.postgresql/postgresql.crt", "/home/op/.postgresql/postgresql.key"],
    )
    .unwrap();
    assert!(defaults.client_cert.is_some());
}

#[test]
fn key_value_passwords_stay_hidden_however_they_are_written() {
    let url = crate::config::DatabaseUrl::new(r"host=db password = 'se cr\'et' sslmode=require user=u");
    assert_eq!(url.redacted(), "host=db password=*** sslmode=require user=u");
    assert_eq!(crate::config::DatabaseUrl::new("host=db password=plain").redacted(), "host=db password=***");
    assert!(!crate::config::DatabaseUrl::new("host=db password='open").redacted().contains("open"));
}
