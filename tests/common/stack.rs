//! Where the local stack listens, written down once: the variables `eval "$(scripts/stack env)"`
//! exports, or, for a test run without them, what `scripts/stack env` itself says (the ports this
//! checkout's stack was started with, or its defaults). The load bench includes this file too.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The connection settings `scripts/stack env` exports.
pub const STACK_VARIABLES: [&str; 3] = ["DATABASE_URL", "KAFKA_BROKERS", "SCHEMA_REGISTRY_URL"];

/// Each of `STACK_VARIABLES`, from the environment or else from `scripts/stack env`.
pub fn stack_addresses() -> BTreeMap<String, String> {
    STACK_VARIABLES.iter().map(|var| (var.to_string(), stack_setting(var))).collect()
}

/// A variable `scripts/stack env` exports (also `PROMETHEUS_URL`, `PROMETHEUS_FILE_SD_DIR`),
/// from the environment or else from the script.
pub fn stack_setting(var: &str) -> String {
    std::env::var(var).ok().or_else(|| script_exports().get(var).cloned()).unwrap_or_else(|| panic!("scripts/stack env exports no {var}"))
}

/// Another variable `scripts/stack env` exports (such as MANIFOLD_PG_CA), not needed by every test.
#[allow(dead_code)] // the load bench includes this file for the addresses only
pub fn stack_variable(var: &str) -> String {
    std::env::var(var)
        .ok()
        .or_else(|| script_exports().get(var).cloned())
        .unwrap_or_else(|| panic!("scripts/stack env exports no {var}: run `scripts/stack up` from this checkout"))
}

fn script_exports() -> &'static BTreeMap<String, String> {
    static EXPORTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    EXPORTS.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack");
        let out = std::process::Command::new(script).arg("env").output().expect("run scripts/stack env");
        assert!(out.status.success(), "scripts/stack env failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(var, value)| (var.to_owned(), value.to_owned()))
            .collect()
    })
}
