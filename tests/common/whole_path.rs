//! What the whole-path fuzz test (`tests/fuzz_pipeline.rs`) observes: the real `manifold
//! ingest` process and its log, and after the run the database, the dead-letter topic and the
//! ingest metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::adversarial::Case;
use super::pipeline::TestPipeline;

/// One produced message and where it landed.
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
    pub case: Case,
    pub size: usize,
}

/// The real binary, its stderr in a file (parsed for the listener address and pause lines).
pub struct Ingest {
    pub child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ingest {
    pub fn start(p: &TestPipeline) -> Ingest {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ingest.log");
        let mut command = p.manifold(&["ingest"]);
        command.stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("log file"));
        command.env("MANIFOLD__TELEMETRY__LOG_FORMAT", "json").env("RUST_LOG", "info");
        Ingest { child: command.spawn().expect("start manifold ingest"), log, _dir: dir }
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The operations listener's address, from its start-up log line.
    pub fn listen(&self) -> Option<String> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("operations listener up"))?;
        let at = line.find("127.0.0.1:")?;
        Some(line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ends(produced: &[Produced]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for m in produced {
        let end = ends.entry(m.partition).or_insert(0);
        *end = (*end).max(m.offset + 1);
    }
    ends
}

pub async fn stored_offsets(p: &TestPipeline) -> BTreeMap<i32, i64> {
    let client = super::connect(&p.db_url).await;
    let rows = client
        .query(
            "SELECT partition, next_offset FROM ingest_offsets WHERE consumer_group = $1 AND topic = $2",
            &[&p.config.ingest.group_id, &p.config.topics.batches.name],
        )
        .await
        .expect("ingest offsets");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// What the database, the metrics and the log say after the run.
pub struct State {
    pub offsets: BTreeMap<i32, i64>,
    /// "reason: message" of each dead letter, by source (partition, offset).
    pub dead: HashMap<(i32, i64), Vec<String>>,
    pub reasons: BTreeMap<String, usize>,
    pub stored: HashSet<(String, String)>,
    /// (system, sensor) → (count, sum) from `readings`, and from `readings_1m`.
    pub readings: HashMap<(String, String), (i64, f64)>,
    pub aggregate: HashMap<(String, String), (i64, f64)>,
    pub outbox_unpublished: Vec<(i64, String, i32, String)>,
    /// The dead-letter topic, read committed: per source (partition, offset), how often it
    /// appears, and whether its value is the original (or cut to fit, saying so).
    pub topic: HashMap<(i32, i64), (usize, bool)>,
    pub pauses: Option<BTreeMap<String, f64>>,
    pub pause_lines: Vec<String>,
    pub relay_lines: Vec<String>,
}

impl State {
    pub async fn read(p: &TestPipeline, ingest: &Ingest, produced: &[Produced]) -> State {
        let client = super::connect(&p.db_url).await;
        let topic = &p.config.topics.batches.name;
        let mut dead: HashMap<(i32, i64), Vec<String>> = HashMap::new();
        let mut reasons = BTreeMap::new();
        let sql = "SELECT source_partition, source_offset, error_kind, left(error_message, 200) FROM dead_letters WHERE source_topic = $1";
        for r in client.query(sql, &[topic]).await.expect("dead letters") {
            let (kind, message): (String, String) = (r.get(2), r.get(3));
            *reasons.entry(kind.clone()).or_insert(0) += 1;
            dead.entry((r.get(0), r.get(1))).or_default().push(format!("{kind}: {message}"));
        }
        let stored = client.query("SELECT system_id, batch_id FROM ingested_batches", &[]).await.expect("batches").iter().map(|r| (r.get(0), r.get(1))).collect();
        let sums = |sql: &'static str| {
            let client = &client;
            async move {
                let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter()
                    .map(|r| {
                        let sum: String = r.get(3);
                        ((r.get(0), r.get(1)), (r.get::<_, i64>(2), sum.parse::<f64>().unwrap_or(f64::NAN)))
                    })
                    .collect::<HashMap<_, _>>()
            }
        };
        let readings = sums(
            "SELECT s.system_id, s.sensor_id, count(*)::int8, sum(r.value::numeric)::text FROM readings r JOIN series s USING (series_id) GROUP BY 1, 2",
        )
        .await;
        let aggregate = sums(
            "SELECT s.system_id, s.sensor_id, sum(m.n)::int8, sum(m.sum::numeric)::text FROM readings_1m m JOIN series s USING (series_id) GROUP BY 1, 2",
        )
        .await;
        let outbox_unpublished = client
            .query(
                "(SELECT seq, topic_role, octet_length(payload) + coalesce(octet_length(message_key), 0) AS size, left(headers::text, 300) FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1)
                 UNION ALL
                 (SELECT seq, topic_role, octet_length(payload) + coalesce(octet_length(message_key), 0) AS size, left(headers::text, 300) FROM outbox WHERE published_at IS NULL ORDER BY size DESC LIMIT 1)",
                &[],
            )
            .await
            .expect("outbox")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let log = ingest.log_text();
        let clip = |l: &str| l.chars().filter(|c| !c.is_control()).take(500).collect::<String>();
        let pause_lines = log.lines().filter(|l| l.contains("ingest paused") || l.contains("ingest stopped: the deployment")).map(clip).collect();
        let relay_lines = log.lines().filter(|l| l.contains("relay") && (l.contains("\"WARN\"") || l.contains("\"ERROR\""))).map(clip).collect();
        let topic = read_dead_letter_topic(p, produced, dead.values().map(Vec::len).sum());
        State { offsets: stored_offsets(p).await, dead, reasons, topic, stored, readings, aggregate, outbox_unpublished, pauses: scrape_pauses(ingest).await, pause_lines, relay_lines }
    }
}

/// Reads the dead-letter topic (read committed) until `want` dead letters came or nothing more
/// comes for a while, and tells per source offset how often it came and whether its key and value
/// are the original (a value cut to fit must say so in `manifold.value.truncated`).
fn read_dead_letter_topic(p: &TestPipeline, produced: &[Produced], want: usize) -> HashMap<(i32, i64), (usize, bool)> {
    use rdkafka::Message;
    use rdkafka::message::Headers;
    let originals: HashMap<(i32, i64), &Case> = produced.iter().map(|m| ((m.partition, m.offset), &m.case)).collect();
    let reader = super::topic::committed_reader(&p.config, &p.config.topics.dead_letters.name);
    let mut seen: HashMap<(i32, i64), (usize, bool)> = HashMap::new();
    let (mut count, mut last_new) = (0, Instant::now());
    while count < want && last_new.elapsed() < Duration::from_secs(15) {
        let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) else { continue };
        last_new = Instant::now();
        count += 1;
        let header = |name: &str| {
            m.headers().and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned()))
        };
        let source = (
            header("manifold.source.partition").and_then(|v| v.parse().ok()).unwrap_or(-1),
            header("manifold.source.offset").and_then(|v| v.parse().ok()).unwrap_or(-1),
        );
        let original = originals.get(&source).is_some_and(|case| {
            let value = case.value.as_deref().unwrap_or_default();
            let value_ok = m.payload().unwrap_or_default() == value
                || (header("manifold.value.truncated").is_some() && value.starts_with(m.payload().unwrap_or_default()));
            let key_ok = case.key.as_deref().unwrap_or_default() == m.key().unwrap_or_default();
            value_ok && key_ok
        });
        let entry = seen.entry(source).or_insert((0, true));
        entry.0 += 1;
        entry.1 &= original;
    }
    seen
}

/// Counters by label from the ingest listener: `manifold_ingest_pauses_total{kind}` counts each
/// entry into a pause; `manifold_ingest_write_errors_total{kind}` each failed write (the only
/// count before the pause counter existed).
async fn scrape_pauses(ingest: &Ingest) -> Option<BTreeMap<String, f64>> {
    let listen = ingest.listen()?;
    let body = reqwest::get(format!("http://{listen}/metrics")).await.ok()?.text().await.ok()?;
    let mut counts = BTreeMap::new();
    for line in body.lines().filter(|l| l.starts_with("manifold_ingest_pauses_total") || l.starts_with("manifold_ingest_write_errors_total")) {
        let (series, value) = line.rsplit_once(' ')?;
        counts.insert(series.trim_start_matches("manifold_ingest_").to_owned(), value.parse().ok()?);
    }
    Some(counts)
}

