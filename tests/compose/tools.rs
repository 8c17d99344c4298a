//! The compose file as Docker's own loader resolves it (scripts/compose-check, compose-go), and
//! the small readers the checks share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

pub const COMPOSE_FILE: &str = "docker-compose.kafka.yml";
/// The one variable the compose file requires (`${MANIFOLD_SECRET_KEY:?...}`).
pub const SECRET_KEY: &str = "a-long-random-secret-for-the-compose-check";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs scripts/compose-check with only PATH, HOME and the cache location of this environment
/// (plus `extra`), so a variable set in the caller's shell cannot change what the file resolves to.
pub fn checker(args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    static PREPARED: OnceLock<()> = OnceLock::new();
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut command = Command::new(repo().join("scripts/compose-check"));
        command.args(args).current_dir(repo()).env_clear();
        for name in ["PATH", "HOME", "MANIFOLD_CACHE", "GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GOFLAGS"] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        command.envs(extra.iter().copied());
        command.output().expect("scripts/compose-check runs")
    };
    // The first use builds the checker and installs hadolint; once, not from every test thread.
    PREPARED.get_or_init(|| {
        let out = run(&["prepare"], &[]);
        assert!(out.status.success(), "installing the compose checks' tools failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
    run(args, extra)
}

fn json_of(args: &[&str], extra: &[(&str, &str)]) -> Value {
    let out = checker(args, extra);
    assert!(out.status.success(), "scripts/compose-check {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// The resolved project, with the secret set as an operator would.
pub fn project() -> &'static Value {
    static PROJECT: OnceLock<Value> = OnceLock::new();
    PROJECT.get_or_init(|| json_of(&["load", COMPOSE_FILE], &[("MANIFOLD_SECRET_KEY", SECRET_KEY)]))
}

pub fn yaml(path: &Path) -> Value {
    json_of(&["yaml", path.to_str().unwrap()], &[])
}

pub fn services() -> &'static serde_json::Map<String, Value> {
    project()["services"].as_object().expect("services")
}

pub fn service(name: &str) -> &'static Value {
    services().get(name).unwrap_or_else(|| panic!("{COMPOSE_FILE} has no service `{name}`"))
}

pub fn environment(service: &Value) -> BTreeMap<String, String> {
    let Some(env) = service["environment"].as_object() else { return BTreeMap::new() };
    env.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{k} has no value")).to_owned())).collect()
}

/// Services that run manifold's image (built from this repository's Dockerfile).
pub fn manifold_services() -> Vec<(&'static str, &'static Value)> {
    let found: Vec<_> = services()
        .iter()
        .filter(|(_, s)| s["build"]["context"].as_str().is_some_and(|c| Path::new(c) == repo()))
        .map(|(name, s)| (name.as_str(), s))
        .collect();
    assert!(!found.is_empty(), "no service builds manifold's image");
    found
}

/// Container ports a service listens on for the other containers (`expose`) or the host (`ports`).
pub fn container_ports(service: &Value) -> Vec<u16> {
    let mut ports: Vec<u16> = service["expose"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p.as_str().unwrap().parse().expect("an exposed port is a number"))
        .collect();
    for port in service["ports"].as_array().into_iter().flatten() {
        ports.push(port["target"].as_u64().expect("ports have a target") as u16);
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `host:port` → the compose service that answers there, or why none does.
pub fn resolve(what: &str, host_port: &str) -> Result<&'static str, String> {
    let (host, port) = host_port.rsplit_once(':').ok_or_else(|| format!("{what}: `{host_port}` has no port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{what}: `{host_port}` has no numeric port"))?;
    let (name, svc) = services().get_key_value(host).ok_or_else(|| format!("{what}: `{host}` is not a service of {COMPOSE_FILE}"))?;
    if container_ports(svc).contains(&port) {
        Ok(name.as_str())
    } else {
        Err(format!("{what}: service `{host}` listens on {:?}, not {port}", container_ports(svc)))
    }
}

/// The host:port of a URL (`scheme://[user[:pw]@]host:port/...`), or of a bare `host:port`.
pub fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap();
    authority.rsplit_once('@').map_or(authority, |(_, hp)| hp)
}

/// The bind mounts of a service: (absolute source, container target).
pub fn binds(service: &Value) -> Vec<(PathBuf, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "bind")
        .map(|v| (PathBuf::from(v["source"].as_str().unwrap()), v["target"].as_str().unwrap().to_owned()))
        .collect()
}

/// The host path mounted at `target` (or at a parent of it) in `service`.
pub fn host_path_of(service: &Value, target: &str) -> Option<PathBuf> {
    binds(service).into_iter().find_map(|(source, mount)| {
        let rest = target.strip_prefix(mount.as_str())?;
        match rest.trim_start_matches('/') {
            "" if rest.is_empty() => Some(source),
            _ if !rest.starts_with('/') => None,
            inner => Some(source.join(inner)),
        }
    })
}

/// Grafana's `$VAR`, `${VAR}` and `$__env{VAR}` in a provisioning file (comments left out). Grafana
/// has no `${VAR:-default}` and expands an unset variable to nothing; both fail here instead.
pub fn grafana_expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let text: String = text.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| format!("{l}\n")).collect();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(body) = after.strip_prefix("__env{").or_else(|| after.strip_prefix('{')) {
            let end = body.find('}').expect("unclosed ${");
            let inner = &body[..end];
            assert!(!inner.contains(":-"), "Grafana provisioning has no defaults: ${{{inner}}}");
            (inner, after.len() - body.len() + end + 1)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match env.get(name) {
            Some(value) => out.push_str(value),
            None => panic!("Grafana provisioning uses ${name}, which the grafana service does not set"),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}
