//! Grafana's dashboards as its PostgreSQL and Prometheus data sources see them: the panel
//! queries of `config/grafana/dashboards/*.json`, and the expansion Grafana applies before a
//! query reaches the database, written from Grafana's documentation (PostgreSQL data source →
//! "Macros"; "Global variables"; "Variable syntax" → multi-value formatting for SQL). A macro or
//! variable not in these tables is an error, so a panel that uses one cannot pass unseen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/dashboards")
}

/// Every dashboard file, parsed, by file name.
pub fn dashboards() -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dashboard_dir()).expect("config/grafana/dashboards") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.insert(path.file_name().unwrap().to_string_lossy().into_owned(), json);
        }
    }
    all
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct Query {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    /// `grafana-postgresql-datasource` or `prometheus`.
    pub source: String,
    /// SQL (`rawSql`) or PromQL (`expr`).
    pub text: String,
    /// `time_series` or `table` for SQL; empty for PromQL.
    pub format: String,
}

/// Every panel query (rows' nested panels included) of every dashboard.
pub fn queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (file, dashboard) in dashboards() {
        let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
        let nested = panels.iter().flat_map(|p| p["panels"].as_array().cloned().unwrap_or_default());
        for panel in panels.iter().cloned().chain(nested) {
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                let source = target["datasource"]["type"].as_str().unwrap_or_default().to_owned();
                let text = target["rawSql"].as_str().or_else(|| target["expr"].as_str()).unwrap_or_default().to_owned();
                out.push(Query {
                    dashboard: file.clone(),
                    panel: panel["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                    source,
                    text,
                    format: target["format"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    out
}

/// A template variable's value as the dashboard holds it.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Multi-value or with "All": Grafana quotes each value for SQL.
    pub quoted: bool,
    pub values: Vec<String>,
}

impl Variable {
    pub fn single(value: &str) -> Self {
        Self { quoted: false, values: vec![value.to_owned()] }
    }
    pub fn multi(values: &[String]) -> Self {
        Self { quoted: true, values: values.to_vec() }
    }
}

/// What a panel query is expanded with: the time range, the interval Grafana computed for it,
/// and the dashboard's variables.
#[derive(Debug, Clone)]
pub struct Context {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub max_data_points: i64,
    /// The data source's minimum interval (`timeInterval` in its provisioning).
    pub min_interval_s: i64,
    pub variables: BTreeMap<String, Variable>,
}

/// The PostgreSQL data source's macros (documented under "Macros"), `$__name(args)`.
pub const SQL_MACROS: &[&str] = &[
    "__time", "__timeEpoch", "__timeFilter", "__timeFrom", "__timeTo", "__timeGroup", "__timeGroupAlias", "__unixEpochFilter",
    "__unixEpochFrom", "__unixEpochTo",
];

/// Grafana's interval steps (its "nice" rounding of range / max data points).
const STEPS_S: &[i64] = &[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

impl Context {
    /// `$__interval` in seconds: range / max data points, rounded up to a step, at least the
    /// data source's minimum.
    pub fn interval_s(&self) -> i64 {
        let raw = ((self.to - self.from).num_seconds() as f64 / self.max_data_points as f64).ceil() as i64;
        let step = STEPS_S.iter().copied().find(|s| *s >= raw).unwrap_or(86400);
        step.max(self.min_interval_s)
    }

    /// Grafana's global variables (documented under "Global variables") that the table knows.
    fn global(&self, name: &str) -> Option<String> {
        let interval = self.interval_s();
        let range = (self.to - self.from).num_seconds();
        Some(match name {
            "__interval" => duration_text(interval),
            "__interval_ms" => (interval * 1000).to_string(),
            // Prometheus: max($__interval + scrape interval, 4 × scrape interval); scrape 15 s.
            "__rate_interval" => duration_text((interval + 15).max(60)),
            "__range" => duration_text(range),
            "__range_s" => range.to_string(),
            _ => return None,
        })
    }

    /// Replaces `$name` / `${name}` variables (template and global) in `text`, as Grafana's
    /// front end does before the query goes to the data source. Unknown names are errors.
    pub fn interpolate(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
                let end = inner.find('}').ok_or_else(|| format!("unclosed ${{ in {text}"))?;
                (&inner[..end], end + 2)
            } else {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            };
            // A macro call stays for the data source to expand.
            if SQL_MACROS.contains(&name) && after[consumed..].starts_with('(') {
                out.push('$');
                out.push_str(name);
            } else if let Some(value) = self.global(name) {
                out.push_str(&value);
            } else if let Some(var) = self.variables.get(name) {
                out.push_str(&format_variable(var));
            } else {
                return Err(format!("${name} is neither a macro, a global variable nor a dashboard variable (in: {text})"));
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Expands the PostgreSQL data source's macros in `sql` (after [`interpolate`]).
    pub fn expand_macros(&self, sql: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = sql;
        while let Some(at) = rest.find("$__") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let name = &after[..end];
            let Some(args_text) = after[end..].strip_prefix('(') else {
                return Err(format!("${name} without arguments in {sql}"));
            };
            // Grafana's pattern: the arguments run to the first `)`.
            let close = args_text.find(')').ok_or_else(|| format!("${name}( is not closed in {sql}"))?;
            let args: Vec<&str> = args_text[..close].split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
            out.push_str(&self.macro_value(name, &args)?);
            rest = &args_text[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Both steps: what PostgreSQL receives for a panel's `rawSql`.
    pub fn expand_sql(&self, sql: &str) -> Result<String, String> {
        self.expand_macros(&self.interpolate(sql)?)
    }

    fn macro_value(&self, name: &str, args: &[&str]) -> Result<String, String> {
        let want = |n: usize| if args.len() == n { Ok(()) } else { Err(format!("${name} takes {n} argument(s), got {args:?}")) };
        let from = self.from.format("%Y-%m-%dT%H:%M:%SZ");
        let to = self.to.format("%Y-%m-%dT%H:%M:%SZ");
        Ok(match name {
            "__time" => {
                want(1)?;
                format!("{} AS \"time\"", args[0])
            }
            "__timeEpoch" => {
                want(1)?;
                format!("extract(epoch from {}) AS \"time\"", args[0])
            }
            "__timeFilter" => {
                want(1)?;
                format!("{} BETWEEN '{from}' AND '{to}'", args[0])
            }
            "__timeFrom" => {
                want(0)?;
                format!("'{from}'")
            }
            "__timeTo" => {
                want(0)?;
                format!("'{to}'")
            }
            "__timeGroup" | "__timeGroupAlias" => {
                // A third argument (fill) makes Grafana fill gaps in the frame, which this table
                // does not model: a panel using it fails here until it does.
                want(2)?;
                let seconds = parse_duration(args[1].trim_matches('\''))?;
                let group = format!("floor(extract(epoch from {})/{seconds})*{seconds}", args[0]);
                if name == "__timeGroupAlias" { format!("{group} AS \"time\"") } else { group }
            }
            "__unixEpochFilter" => {
                want(1)?;
                format!("{} >= {} AND {} <= {}", args[0], self.from.timestamp(), args[0], self.to.timestamp())
            }
            "__unixEpochFrom" => {
                want(0)?;
                self.from.timestamp().to_string()
            }
            "__unixEpochTo" => {
                want(0)?;
                self.to.timestamp().to_string()
            }
            other => return Err(format!("${other}(…) is not in the macro table of Grafana's PostgreSQL data source")),
        })
    }
}

/// A single value goes in as it is (quotes doubled); a multi-value or "All" variable becomes a
/// list of quoted literals, `'a','b'` (Grafana's SQL formatting of multi-value variables).
fn format_variable(var: &Variable) -> String {
    if var.quoted {
        var.values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(",")
    } else {
        var.values.first().map(|v| v.replace('\'', "''")).unwrap_or_default()
    }
}

/// `30s`, `5m`, `1h`, `1d`, `500ms` → whole seconds (Grafana's interval units).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: i64 = number.parse().map_err(|_| format!("not an interval: {text:?}"))?;
    match unit {
        "ms" => Ok((n / 1000).max(1)),
        "s" => Ok(n),
        "m" => Ok(n * 60),
        "h" => Ok(n * 3600),
        "d" => Ok(n * 86400),
        "w" => Ok(n * 7 * 86400),
        _ => Err(format!("not an interval: {text:?}")),
    }
}

/// Seconds as Grafana writes an interval: the largest unit that divides it.
pub fn duration_text(seconds: i64) -> String {
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}
