//! Dependencies between the top-level modules of `src/` run one way:
//! `main → cli → startup → processes → shared layers → domain, config`; no process imports another and
//! no two modules import each other (directly or round a longer cycle). Every `crate::` and
//! `super::` path is read (`use` lines, grouped uses, inline paths, re-exports); comments and
//! string literals are not code and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[path = "architecture/reader.rs"]
mod reader;

use reader::{file_module, references};

/// The allowed-dependency table, from the top. A module may use any module of a later layer;
/// within a layer only the shared layers and the base may use each other (and never round a
/// cycle). A top-level module missing from this table fails the test, so a new one is placed
/// deliberately.
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["main"]),
    ("commands", &["cli"]),
    // The subcommands that run processes call the one startup; it never calls back.
    ("startup", &["startup"]),
    ("processes", &["ingest", "relay", "infer", "api", "sim", "check", "train"]),
    ("shared", &["store", "codec", "kafka", "window", "telemetry", "failure", "shutdown", "rig", "model"]),
    ("base", &["domain", "config"]),
];

/// Layers whose members may use each other (acyclically).
const SIBLINGS_ALLOWED: &[&str] = &["shared", "base"];

#[derive(Debug, Default)]
struct Report {
    /// References that cross top-level modules.
    edges: usize,
    /// (from, to) → the first place it happens, `file:line`.
    violations: BTreeMap<(String, String), String>,
    /// Top-level modules that depend on each other round a cycle.
    cycles: Vec<Vec<String>>,
    /// Top-level modules that are not in the table.
    unplaced: BTreeSet<String>,
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, members)| members.contains(&module))
}

fn allowed(from: &str, to: &str) -> bool {
    match (layer_of(from), layer_of(to)) {
        (Some(a), Some(b)) => b > a || (a == b && SIBLINGS_ALLOWED.contains(&LAYERS[a].0)),
        _ => false,
    }
}

/// Checks a set of `(path relative to the crate, source)` files against the table.
fn check(files: &[(String, String)]) -> Report {
    let mut report = Report::default();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, src) in files {
        let Some(from) = file_module(path).first().cloned() else { continue };
        if layer_of(&from).is_none() {
            report.unplaced.insert(from.clone());
        }
        for (line, target) in references(path, src) {
            let to = target[0].clone();
            if to == from {
                continue;
            }
            report.edges += 1;
            if layer_of(&to).is_none() {
                report.unplaced.insert(to.clone());
            }
            graph.entry(from.clone()).or_default().insert(to.clone());
            if !allowed(&from, &to) {
                report.violations.entry((from.clone(), to)).or_insert_with(|| format!("{path}:{line}"));
            }
        }
    }
    report.cycles = cycles(&graph);
    report
}

/// Strongly connected components of more than one module (Tarjan's algorithm is overkill for
/// twenty nodes: two modules are in one component when each reaches the other).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (m, r) in &reaches {
        if done.contains(*m) || !r.contains(*m) {
            continue;
        }
        let component: Vec<String> = r.iter().filter(|o| reaches.get(o).is_some_and(|back| back.contains(*m))).cloned().collect();
        done.extend(component.iter().cloned());
        out.push(component);
    }
    out
}

fn source_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/");
                files.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn dependencies_between_top_level_modules_follow_the_table() {
    let report = check(&source_files());
    println!("{} references cross top-level modules", report.edges);
    assert!(report.edges > 100, "only {} references found: the reader is reading nothing", report.edges);
    // Every kind of problem is listed before failing, so one run shows all that is wrong.
    let mut problems = Vec::new();
    if !report.unplaced.is_empty() {
        problems.push(format!("modules not in the table (place them in LAYERS): {:?}", report.unplaced));
    }
    if !report.violations.is_empty() {
        let listed: Vec<String> = report.violations.iter().map(|((from, to), at)| format!("{from} → {to} (e.g. {at})")).collect();
        problems.push(format!("dependencies the table forbids:\n  {}", listed.join("\n  ")));
    }
    if !report.cycles.is_empty() {
        problems.push(format!("modules that depend on each other: {:?}", report.cycles));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_planted_violations_in_every_form() {
    let file = |path: &str, src: &str| (path.to_owned(), src.to_owned());
    let files = vec![
        // Grouped use: api → ingest is a process importing a process; store is fine.
        file("src/api/handlers.rs", "use crate::{store::Store, ingest::validate::Validator};\n"),
        // An inline path two lines down, from inside an inline test module.
        file("src/infer/model/gnn.rs", "mod tests {\n    fn f() {\n        let _ = crate::sim::load();\n    }\n}\n"),
        // `super::super` from infer/model/x.rs climbs to the crate root, then into relay.
        file("src/infer/model/x.rs", "pub use super::super::super::relay::Relay;\n"),
        // A shared layer reaching up into a process.
        file("src/store/reads.rs", "fn g() -> crate::api::AppState { todo!() }\n"),
        // Not code: a comment, a doc link, a string and a macro's $crate.
        file("src/codec/mod.rs", "// crate::api\n/// [`crate::ingest`]\nconst S: &str = \"crate::relay\";\nmacro_rules! m { () => { $crate::sim }; }\n"),
        // Allowed: a process using a shared layer and the base, and a re-export within itself.
        file("src/ingest/mod.rs", "pub use crate::domain::Row;\nuse crate::store;\npub use self::x::Y;\n"),
        file("src/relay/mod.rs", "use crate::ingest::Something;\n"),
        // A group over lines with a nested group; the line count stays right after it.
        file("src/api/grouped.rs", "use crate::{\n    codec::{A, B},\n    domain::X,\n};\nfn f() { crate::relay::y(); }\n"),
    ];
    let report = check(&files);
    let found: BTreeMap<(&str, &str), &str> = report.violations.iter().map(|((f, t), at)| ((f.as_str(), t.as_str()), at.as_str())).collect();
    let expected = [
        (("api", "ingest"), "src/api/handlers.rs:1"),
        (("infer", "sim"), "src/infer/model/gnn.rs:3"),
        (("infer", "relay"), "src/infer/model/x.rs:1"),
        (("store", "api"), "src/store/reads.rs:1"),
        (("relay", "ingest"), "src/relay/mod.rs:1"),
        (("api", "relay"), "src/api/grouped.rs:5"),
    ];
    assert_eq!(found, expected.into_iter().collect::<BTreeMap<_, _>>(), "{report:?}");
    assert_eq!(report.edges, 11, "every cross-module reference counts once: {report:?}");
    // ingest → store → api → relay → ingest: a cycle through the planted violations.
    assert_eq!(report.cycles, vec![["api", "ingest", "relay", "store"].map(String::from).to_vec()]);

    let cyclic = vec![file("src/store/a.rs", "use crate::codec::X;\n"), file("src/codec/b.rs", "use crate::store::Y;\n")];
    assert_eq!(check(&cyclic).cycles, vec![vec!["codec".to_owned(), "store".to_owned()]]);
    let unplaced = check(&[file("src/nowhere/mod.rs", "use crate::domain::X;\n")]);
    assert!(unplaced.unplaced.contains("nowhere"), "a module missing from the table is reported");
}
