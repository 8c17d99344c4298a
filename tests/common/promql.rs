//! The metric names a PromQL expression reads, and every metric manifold registers, so alert
//! rules and dashboards can be checked against what the processes really export.

use std::collections::BTreeSet;

/// Every metric of every component, registered on one registry as `manifold run` does (a name
/// two components register would panic here), as `name{label,…}`. Labelled metrics are absent
/// from `/metrics` until used, so the registered descriptors are read instead.
pub fn registered_metrics() -> Vec<String> {
    let config = super::config_with(&[]);
    let metrics = manifold::telemetry::Metrics::new();
    let _ingest = manifold::ingest::IngestMetrics::new(&metrics);
    let _relay = manifold::relay::RelayMetrics::new(&metrics);
    let _infer = manifold::infer::InferMetrics::new(&metrics);
    let store = manifold::api::store_for(&config).unwrap();
    let _api = manifold::api::AppState::new(&config, store, metrics.clone()).unwrap();
    metrics.registered()
}

/// PromQL words that are not metric names where they stand: operators, modifiers, and the
/// aggregations, which a grouping clause may separate from their `(` (functions are recognised
/// by the `(` that follows them).
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan", "sum", "min", "max",
    "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
];

/// The metric names `expr` selects. Label matchers, strings, durations, grouping clauses and
/// function names are not metric names; template variables (`$system`, `$__interval`) are
/// left out with the rest of their word.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // After `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, the parenthesis holds labels.
    let mut labels_follow = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_quoted(&chars, i);
        } else if c == '{' {
            i = skip_until(&chars, i, '}');
        } else if c == '[' {
            i = skip_until(&chars, i, ']');
        } else if c == '(' && labels_follow {
            i = skip_until(&chars, i, ')');
            labels_follow = false;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            let lower = word.to_ascii_lowercase();
            if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str()) {
                labels_follow = true;
            } else if !KEYWORDS.contains(&lower.as_str()) && next != Some('(') {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number, with its exponent or duration unit (1e-9, 5m).
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

fn skip_quoted(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut i = open + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Past the `close` that ends the bracket at `open`, skipping quoted text inside it.
fn skip_until(chars: &[char], open: usize, close: char) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != close {
        i = if matches!(chars[i], '"' | '\'' | '`') { skip_quoted(chars, i) } else { i + 1 };
    }
    i + 1
}

/// The names in `names` that no registered metric exports: a histogram's `_bucket`, `_sum` and
/// `_count` series belong to the histogram, a counter or gauge is matched by its full name. The
/// registered descriptors carry no type, so those suffixes are accepted on any registered name.
pub fn unregistered<'a>(names: impl IntoIterator<Item = &'a String>, registered: &[String]) -> Vec<String> {
    let bare: BTreeSet<&str> = registered.iter().map(|n| n.split('{').next().unwrap_or(n)).collect();
    names
        .into_iter()
        .filter(|name| {
            let histogram_base = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix));
            !bare.contains(name.as_str()) && !histogram_base.is_some_and(|base| bare.contains(base))
        })
        .cloned()
        .collect()
}
