//! docker-compose.kafka.yml and the Dockerfile, checked statically: no Docker engine runs where
//! manifold is tested. The compose file is validated against the Compose Specification's schema
//! and resolved by compose-go (the loader `docker compose` itself uses; scripts/compose-check);
//! manifold's services' environments go through manifold's own config loader; mounts, COPY
//! sources, ports, URLs and shared libraries are compared with the repository and the binary.

#[path = "compose/dockerfile.rs"]
mod dockerfile;
#[path = "compose/image.rs"]
mod image;
#[path = "compose/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use manifold::config::{Config, Sources};
use serde_json::Value;
use tools::*;

#[test]
fn compose_file_validates_against_the_specification_and_requires_the_secret() {
    assert!(services().len() >= 11, "compose file resolves to {:?}", services().keys().collect::<Vec<_>>());
    let out = checker(&["load", COMPOSE_FILE], &[]);
    assert!(!out.status.success(), "the compose file must refuse to start without MANIFOLD_SECRET_KEY");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MANIFOLD_SECRET_KEY"), "the refusal names the variable: {err}");
}

#[test]
fn the_schema_check_rejects_what_the_specification_forbids() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("compose.yml");
    std::fs::write(&bad, "services:\n  x:\n    image: busybox\n    restart: sometimes-maybe\n    helthcheck: {}\n").unwrap();
    let out = checker(&["load", bad.to_str().unwrap()], &[]);
    assert!(!out.status.success(), "a misspelt key must fail the schema check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Compose Specification schema"), "{err}");
}

/// Each manifold service's environment loads, and every variable changes the configuration or
/// is one the command line reads (a clap `env = "..."` in src/cli/): a variable manifold ignores
/// (a typo, a setting of another program) fails here.
#[test]
fn manifold_services_environment_is_accepted_and_every_variable_is_used() {
    let cli_vars = cli_env_vars(&repo().join("src/cli"));
    for (name, svc) in manifold_services() {
        let env = environment(svc);
        let loaded = Config::load(&Sources::default(), &env)
            .unwrap_or_else(|e| panic!("service `{name}`: manifold refuses its environment: {e}"));
        let full = format!("{loaded:?}");
        for var in env.keys().filter(|v| !cli_vars.contains(*v)) {
            let mut without = env.clone();
            without.remove(var);
            if let Ok(other) = Config::load(&Sources::default(), &without) {
                assert!(format!("{other:?}") != full, "service `{name}`: {var} changes nothing in manifold's configuration (ignored, or set to the default)");
            }
        }
        // Every subcommand the service runs exists (clap parses it; --help exits 0).
        let command: Vec<&str> = svc["command"].as_array().expect("command").iter().map(|c| c.as_str().unwrap()).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_manifold")).args(&command).arg("--help").output().unwrap();
        assert!(out.status.success(), "service `{name}`: `manifold {}` is no command: {}", command.join(" "), String::from_utf8_lossy(&out.stderr));
    }
}

/// Variables the command line reads through clap (`env = "NAME"`), not through the config loader.
fn cli_env_vars(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(cli_env_vars(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            found.extend(text.split("env = \"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()));
        }
    }
    found
}

/// The listener each long-running manifold service serves its health and metrics on.
fn listener(command: &str, config: &Config) -> Option<std::net::SocketAddr> {
    match command {
        "ingest" => Some(config.ingest.listen),
        "infer" => Some(config.infer.listen),
        "api" => Some(config.api.listen),
        _ => None,
    }
}

#[test]
fn ports_agree_between_compose_manifold_prometheus_and_grafana() {
    let prometheus = service("prometheus");
    let config_path = prometheus["command"].as_array().unwrap().iter().find_map(|a| a.as_str()?.strip_prefix("--config.file="));
    let host_config = host_path_of(prometheus, config_path.expect("prometheus is given --config.file")).expect("its config file is mounted");
    let scrape = yaml(&host_config);
    let targets: Vec<(String, String)> = scrape["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| {
            let name = job["job_name"].as_str().unwrap().to_owned();
            job["static_configs"].as_array().unwrap().iter().flat_map(move |sc| {
                let name = name.clone();
                sc["targets"].as_array().unwrap().iter().map(move |t| (name.clone(), t.as_str().unwrap().to_owned()))
            })
        })
        .collect();
    let mut errors = Vec::new();
    for (job, target) in &targets {
        if let Err(e) = resolve(&format!("prometheus job {job}"), target) {
            errors.push(e);
        }
    }

    for (name, svc) in manifold_services() {
        let config = Config::load(&Sources::default(), &environment(svc)).unwrap();
        for (what, url) in [
            ("DATABASE_URL", host_port(config.database.url.expose()).to_owned()),
            ("SCHEMA_REGISTRY_URL", host_port(&config.schema_registry.url).to_owned()),
        ] {
            if let Err(e) = resolve(&format!("service `{name}` {what}"), &url) {
                errors.push(e);
            }
        }
        let advertised = environment(service("kafka")).remove("KAFKA_ADVERTISED_LISTENERS").unwrap_or_default();
        for broker in config.kafka.brokers.split(',') {
            let _ = resolve(&format!("service `{name}` KAFKA_BROKERS"), broker).map_err(|e| errors.push(e));
            if !advertised.split(',').any(|l| host_port(l) == broker) {
                errors.push(format!("service `{name}`: broker {broker} is not among kafka's advertised listeners {advertised}"));
            }
        }
        let command = svc["command"][0].as_str().unwrap();
        let Some(listen) = listener(command, &config) else { continue };
        let port = listen.port();
        if !listen.ip().is_unspecified() {
            errors.push(format!("service `{name}` listens on {listen}: other containers cannot reach it"));
        }
        if container_ports(svc) != [port] {
            errors.push(format!("service `{name}` exposes {:?}, manifold listens on {port}", container_ports(svc)));
        }
        let probe = svc["healthcheck"]["test"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "));
        let probe = probe.unwrap_or_default();
        if !probe.contains(&format!("/dev/tcp/127.0.0.1/{port} ")) || !probe.contains("GET /health/ready ") {
            errors.push(format!("service `{name}`: healthcheck `{probe}` does not ask 127.0.0.1:{port}/health/ready"));
        }
        let scraped: Vec<_> = targets.iter().filter(|(_, t)| *t == format!("{name}:{port}")).collect();
        if scraped.len() != 1 {
            errors.push(format!("service `{name}`: {name}:{port} is scraped by {} prometheus jobs, not 1", scraped.len()));
        }
    }

    let grafana = service("grafana");
    let grafana_env = environment(grafana);
    let provisioning = host_path_of(grafana, "/etc/grafana/provisioning").expect("grafana's provisioning is mounted");
    let mut datasources = 0;
    for file in yml_files(&provisioning.join("datasources")) {
        let expanded = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(expanded.path(), grafana_expand(&std::fs::read_to_string(&file).unwrap(), &grafana_env)).unwrap();
        for ds in yaml(expanded.path())["datasources"].as_array().into_iter().flatten() {
            let Some(url) = ds["url"].as_str() else { continue };
            datasources += 1;
            let what = format!("grafana datasource {} ({})", ds["name"], file.display());
            let _ = resolve(&what, host_port(url)).map_err(|e| errors.push(e));
        }
    }
    assert!(datasources >= 2, "grafana needs its PostgreSQL and Prometheus data sources, found {datasources} URLs");
    let dashboards_dir = binds(grafana).into_iter().find(|(s, _)| s.ends_with("config/grafana/dashboards")).map(|(_, t)| t);
    for file in yml_files(&provisioning.join("dashboards")) {
        for provider in yaml(&file)["providers"].as_array().into_iter().flatten() {
            let path = provider["options"]["path"].as_str().map(|p| p.trim_end_matches('/'));
            if path != dashboards_dir.as_deref() {
                errors.push(format!("{}: dashboards are read from {path:?}, mounted at {dashboards_dir:?}", file.display()));
            }
        }
    }
    assert!(errors.is_empty(), "ports and addresses disagree:\n{}", errors.join("\n"));
}

fn yml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let read = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<_> = read.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml")).collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no YAML file", dir.display());
    files
}

/// Prometheus in compose loads the same rule files as the local stack, through its mount, and
/// promtool accepts the whole configuration with them.
#[test]
fn prometheus_in_compose_loads_manifolds_rules_through_its_mount() {
    let prometheus = service("prometheus");
    let host_config = host_path_of(prometheus, "/etc/prometheus/prometheus.yml").expect("config mounted");
    let mut text = std::fs::read_to_string(&host_config).unwrap();
    let rule_globs: Vec<String> = yaml(&host_config)["rule_files"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    for glob in &rule_globs {
        let (dir, _) = glob.rsplit_once('/').unwrap();
        let host_dir = host_path_of(prometheus, dir).unwrap_or_else(|| panic!("rule_files {glob}: {dir} is not mounted"));
        assert_eq!(host_dir, repo().join("config/prometheus/rules"), "compose must load the stack's own rule files");
        text = text.replace(dir, host_dir.to_str().unwrap());
    }
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(copy.path(), text).unwrap();
    let out = Command::new("promtool").args(["check", "config"]).arg(copy.path()).output().expect("promtool (scripts/stack installs Debian's prometheus)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "promtool check config: {report}{}", String::from_utf8_lossy(&out.stderr));
    let rules: usize = report.lines().filter_map(|l| l.trim().strip_prefix("SUCCESS: ")?.strip_suffix(" rules found")?.parse::<usize>().ok()).sum();
    assert!(rules > 0, "no rules loaded through the mount: {report}");
}

/// The healthcheck each long-running manifold service declares, run by bash as Docker would,
/// against manifold's own operations listener (on a free port): it passes while the listener
/// reports ready and fails while it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_healthchecks_follow_manifolds_readiness() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let ready = Arc::new(AtomicBool::new(true));
    let flag = ready.clone();
    let readiness: manifold::telemetry::ops::Readiness =
        Arc::new(move || if flag.load(Ordering::SeqCst) { Ok(()) } else { Err("not yet".into()) });
    let stop = tokio_util::sync::CancellationToken::new();
    let (bound, server) = manifold::telemetry::ops::serve("127.0.0.1:0".parse().unwrap(), manifold::telemetry::Metrics::new(), readiness, stop.clone())
        .await
        .unwrap();
    let mut probed = 0;
    for (name, svc) in manifold_services() {
        let Some(test) = svc["healthcheck"]["test"].as_array() else { continue };
        let test: Vec<&str> = test.iter().map(|t| t.as_str().unwrap()).collect();
        let ["CMD", "bash", "-c", script] = test.as_slice() else { panic!("service `{name}`: unexpected healthcheck form {test:?}") };
        let config = Config::load(&Sources::default(), &environment(svc)).unwrap();
        let port = listener(svc["command"][0].as_str().unwrap(), &config).expect("a healthcheck on a service with a listener").port();
        let script = script.replace(&format!("/dev/tcp/127.0.0.1/{port}"), &format!("/dev/tcp/127.0.0.1/{}", bound.port()));
        for expect_ready in [true, false] {
            ready.store(expect_ready, Ordering::SeqCst);
            let script = script.clone();
            let status = tokio::task::spawn_blocking(move || Command::new("bash").args(["-c", &script]).status().unwrap()).await.unwrap();
            assert_eq!(status.success(), expect_ready, "service `{name}`: healthcheck with the listener {}ready", if expect_ready { "" } else { "not " });
        }
        probed += 1;
    }
    assert!(probed >= 3, "ingest, infer and api each have a healthcheck; probed {probed}");
    stop.cancel();
    server.await.unwrap();
}

/// Kafka and the registry in compose are the versions the local stack runs, so what the tests
/// prove against the stack holds for the compose file too.
#[test]
fn compose_runs_the_versions_the_local_stack_tests() {
    for (svc, script, variable) in [("kafka", "kafka.sh", "KAFKA_VERSION"), ("registry", "registry.sh", "APICURIO_VERSION")] {
        let text = std::fs::read_to_string(repo().join("scripts/stack.d").join(script)).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{variable}="))).unwrap_or_else(|| panic!("{script} sets {variable}"));
        let version = line.rsplit_once(":-").expect("a default").1.trim_end_matches(['}', '"']);
        let image = service(svc)["image"].as_str().unwrap();
        assert!(image.ends_with(&format!(":{version}")), "service `{svc}` runs {image}; the local stack runs {version} ({script})");
    }
}

/// The roles, passwords and databases the services log in with are the ones that exist: the
/// superuser of the image, the role and databases the init script creates from the same
/// variables, and the role the `grants` service creates with its password.
#[test]
fn credentials_agree_with_what_the_database_creates() {
    let db = service("timescaledb");
    let script = binds(db).into_iter().find(|(_, t)| t.starts_with("/docker-entrypoint-initdb.d/")).expect("an init script is mounted").0;
    let sql = std::fs::read_to_string(script).unwrap();
    let db_env = environment(db);
    let created = |what: &str| -> Vec<String> {
        sql.split(&format!("CREATE {what} ")).skip(1).map(|rest| rest.split_whitespace().next().unwrap().to_owned()).collect()
    };
    let mut databases = created("DATABASE");
    databases.push(db_env["POSTGRES_DB"].clone());
    // role -> password, as each is created.
    let mut logins = BTreeMap::from([(db_env["POSTGRES_USER"].clone(), db_env["POSTGRES_PASSWORD"].clone())]);
    for role in created("ROLE") {
        let var = format!("{}_DB_PASSWORD", role.to_ascii_uppercase());
        assert!(sql.contains(&format!("${{{var}:?}}")), "the init script sets {role}'s password from {var}");
        logins.insert(role, db_env.get(&var).unwrap_or_else(|| panic!("the timescaledb service sets no {var}")).clone());
    }
    let grants = service("grants");
    let command: Vec<&str> = grants["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    let ["grants", "grafana", role, flags @ ..] = command.as_slice() else { panic!("grants runs {command:?}") };
    assert!(flags.contains(&"--login") && flags.contains(&"--execute"), "grants must create a role that logs in: {command:?}");
    let grants_env = environment(grants);
    logins.insert((*role).to_owned(), grants_env["GRAFANA_PG_PASSWORD"].clone());

    let check = |who: &str, user: &str, password: &str, database: &str| {
        let known = logins.get(user).unwrap_or_else(|| panic!("{who} logs in as `{user}`, which nothing creates ({:?})", logins.keys()));
        assert_eq!(password, known, "{who}: the password of `{user}` differs from the one it is created with");
        assert!(databases.iter().any(|d| d == database), "{who} uses database `{database}`, which nothing creates ({databases:?})");
    };
    let url_login = |who: &str, url: &str| {
        let url = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{who}: {e}"));
        check(who, url.username(), url.password().unwrap_or(""), url.path().trim_start_matches('/'));
    };
    for (name, svc) in manifold_services() {
        let config = Config::load(&Sources::default(), &environment(svc)).unwrap();
        url_login(&format!("service `{name}`"), config.database.url.expose());
    }
    url_login("grants --admin-url", &grants_env["MANIFOLD_PG_ADMIN_URL"]);
    let registry = environment(service("registry"));
    let jdbc = &registry["APICURIO_DATASOURCE_URL"];
    check("the registry", &registry["APICURIO_DATASOURCE_USERNAME"], &registry["APICURIO_DATASOURCE_PASSWORD"], jdbc.rsplit('/').next().unwrap());
    let grafana = environment(service("grafana"));
    let provisioning = host_path_of(service("grafana"), "/etc/grafana/provisioning").unwrap();
    let mut postgres_sources = 0;
    for file in yml_files(&provisioning.join("datasources")) {
        let expanded = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(expanded.path(), grafana_expand(&std::fs::read_to_string(&file).unwrap(), &grafana)).unwrap();
        for ds in yaml(expanded.path())["datasources"].as_array().into_iter().flatten().filter(|d| d["type"].as_str().is_some_and(|t| t.contains("postgres"))) {
            postgres_sources += 1;
            let database = ds["jsonData"]["database"].as_str().or(ds["database"].as_str()).expect("the data source names its database");
            check("grafana", ds["user"].as_str().unwrap(), ds["secureJsonData"]["password"].as_str().unwrap_or(""), database);
        }
    }
    assert_eq!(postgres_sources, 1, "one PostgreSQL data source");
    // Every GRAFANA_* variable is read by the provisioning files (none set for nothing).
    let texts: String = ["datasources", "dashboards"].iter().flat_map(|d| yml_files(&provisioning.join(d))).map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for var in grafana.keys().filter(|k| k.starts_with("GRAFANA_")) {
        assert!(texts.contains(var.as_str()), "grafana sets {var}, which no provisioning file reads");
    }
}

/// Start-up order: one-shots (migrate, topics, schemas, grants) run once and are never restarted;
/// every long-running manifold process waits for them; a `service_healthy` dependency has a
/// healthcheck to wait for (without one, compose waits forever).
#[test]
fn start_up_order_runs_the_setup_once_before_the_processes() {
    let mut errors = Vec::new();
    for (name, svc) in services() {
        for (dep, how) in svc["depends_on"].as_object().into_iter().flatten() {
            let target = service(dep);
            match how["condition"].as_str() {
                Some("service_healthy") if target["healthcheck"]["test"].is_null() => {
                    errors.push(format!("`{name}` waits for `{dep}` to be healthy, which has no healthcheck"))
                }
                Some("service_completed_successfully") if target["restart"].as_str() != Some("no") => {
                    errors.push(format!("`{name}` waits for `{dep}` to complete, which restarts"))
                }
                _ => {}
            }
        }
    }
    for (name, svc) in manifold_services() {
        let command = svc["command"][0].as_str().unwrap();
        if ["ingest", "infer", "api"].contains(&command) {
            for setup in ["migrate", "topics", "schemas"] {
                if svc["depends_on"][setup]["condition"] != "service_completed_successfully" {
                    errors.push(format!("`{name}` starts without waiting for `{setup}` to complete"));
                }
            }
            if svc["restart"] == "no" {
                errors.push(format!("`{name}` is never restarted"));
            }
        } else if svc["restart"] != "no" {
            errors.push(format!("one-shot `{name}` ({command}) would be restarted after it finished"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
