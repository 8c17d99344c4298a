//! No single message can stop ingest: a value the database refuses is isolated and
//! dead-lettered as `storage_rejected`, a NUL in any text cannot reach a column, and a broken
//! deployment pauses loudly without dead-lettering anything.

mod common;

use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use manifold::telemetry::Metrics;
use tokio_util::sync::CancellationToken;

/// Ten PS1 readings, once a second from `start_us`.
fn batch(system: &str, id: &str, start_us: i64) -> Vec<u8> {
    BatchBuilder::new(system).id(id).per_second("PS1", start_us, vec![100.0; 10]).json()
}

fn hour_ago() -> i64 {
    chrono::Utc::now().timestamp_micros() - 3_600_000_000
}

/// Runs ingest in this process with a registry the test can read.
fn run_ingest(p: &TestPipeline) -> (Metrics, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let handle = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Ingest, p.config.clone(), metrics.clone(), token.clone()));
    (metrics, token, handle)
}

/// The sum of a metric's samples whose line starts with `series` (a name, or a name and labels).
fn sample(metrics: &Metrics, series: &str) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn pauses(metrics: &Metrics) -> u64 {
    sample(metrics, "manifold_ingest_pauses_total") as u64
}

async fn wait_until_systemic(metrics: &Metrics, why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sample(metrics, "manifold_ingest_systemic_failure") != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_field_name_is_dead_lettered_and_ingest_goes_on() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let (metrics, stop, running) = run_ingest(&p);
    p.produce(&system, &batch(&system, "before", hour_ago())).await;
    // The 13-byte message that once stopped ingest for every system.
    p.produce(&system, br#"{"\u0000": 1}"#).await;
    let huge_name = format!(r#"{{"{}": 1}}"#, "x".repeat(600_000));
    p.produce(&system, huge_name.as_bytes()).await;
    p.produce(&system, &batch(&system, "after", hour_ago() + 10_000_000)).await;

    p.wait_for("SELECT count(*) FROM ingested_batches", 2, Duration::from_secs(30)).await;
    p.wait_for("SELECT count(*) FROM dead_letters", 2, Duration::from_secs(30)).await;
    let client = common::connect(&p.db_url).await;
    for row in client.query("SELECT error_message, length(message_value) FROM dead_letters", &[]).await.unwrap() {
        let message: String = row.get(0);
        assert!(!message.contains('\u{0}') && message.len() <= 1024, "sanitized and bounded: {} bytes", message.len());
    }
    let longest: i32 = client.query_one("SELECT max(length(message_value)) FROM dead_letters", &[]).await.unwrap().get(0);
    assert_eq!(longest as usize, huge_name.len(), "the original value is kept byte for byte");
    p.wait_for("SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, Duration::from_secs(30)).await;
    assert_eq!(pauses(&metrics), 0, "odd input never pauses ingest");
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_isolated_as_storage_rejected_in_offset_order() {
    let p = TestPipeline::new(&[("MANIFOLD__TOPICS__PARTITIONS", "1"), ("MANIFOLD__INGEST__CHUNK_MAX_DELAY_MS", "500")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    // A value the database refuses for its content (a data exception), standing for anything
    // validation cannot foresee: batch ids starting with "poison" cannot be stored.
    let client = common::connect(&p.db_url).await;
    client
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.batch_id LIKE 'poison%' THEN RAISE EXCEPTION 'poisoned batch id' USING ERRCODE = '22023'; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON ingested_batches FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
    let start = hour_ago();
    let total = 40;
    let poisoned = [3, 4, 17, 39];
    for i in 0..total {
        let id = if poisoned.contains(&i) { format!("poison-{i}") } else { format!("good-{i}") };
        p.produce(&system, &batch(&system, &id, start + i * 10_000_000)).await;
    }
    let (metrics, stop, running) = run_ingest(&p);
    p.wait_for("SELECT count(*) FROM ingested_batches", total - poisoned.len() as i64, Duration::from_secs(60)).await;
    p.wait_for("SELECT count(*) FROM dead_letters", poisoned.len() as i64, Duration::from_secs(30)).await;
    let rows = client
        .query("SELECT source_offset, error_kind, batch_id, error_message FROM dead_letters ORDER BY dead_letter_id", &[])
        .await
        .unwrap();
    let offsets: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(offsets, poisoned.to_vec(), "the culprits, in source-offset order");
    for row in &rows {
        assert_eq!(row.get::<_, String>(1), "storage_rejected");
        assert!(row.get::<_, String>(2).starts_with("poison"));
        assert!(row.get::<_, String>(3).contains("22023"), "the reason carries the SQLSTATE");
    }
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, (total - poisoned.len() as i64) * 10, "every good reading stored once");
    let next: i64 = client.query_one("SELECT next_offset FROM ingest_offsets", &[]).await.unwrap().get(0);
    assert_eq!(next, total);
    assert_eq!(pauses(&metrics), 0, "isolating a culprit is not a pause");
    assert_eq!(sample(&metrics, "manifold_ingest_dead_letters_total{reason=\"storage_rejected\"}"), 4.0);
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_pauses_ingest_as_systemic_without_a_dead_letter_and_resumes_when_fixed() {
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__RETRY_MAX_MS", "500")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let client = common::connect(&p.db_url).await;
    client.batch_execute("ALTER TABLE ingested_batches RENAME TO ingested_batches_moved").await.unwrap();
    let (metrics, stop, running) = run_ingest(&p);
    for i in 0..5 {
        p.produce(&system, &batch(&system, &format!("b{i}"), hour_ago() + i * 10_000_000)).await;
    }
    wait_until_systemic(&metrics, "a missing table is reported as systemic").await;
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0, "a deployment problem never dead-letters");
    assert!(sample(&metrics, "manifold_ingest_pauses_total{kind=\"systemic\"}") >= 1.0, "the pause is counted as systemic");

    client.batch_execute("ALTER TABLE ingested_batches_moved RENAME TO ingested_batches").await.unwrap();
    p.wait_for("SELECT count(*) FROM ingested_batches", 5, Duration::from_secs(30)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 50);
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0);
    assert_eq!(sample(&metrics, "manifold_ingest_systemic_failure"), 0.0, "resumed by itself once fixed");
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_every_value_is_systemic_not_a_dead_letter_per_message() {
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__RETRY_MAX_MS", "500")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let client = common::connect(&p.db_url).await;
    // Every insert fails with a data exception: no message is at fault, so the canary fails too.
    client
        .batch_execute(
            "CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               RAISE EXCEPTION 'refusing everything' USING ERRCODE = '22023'; END $$; \
             CREATE TRIGGER refuse_all BEFORE INSERT ON ingested_batches FOR EACH ROW EXECUTE FUNCTION refuse_all();",
        )
        .await
        .unwrap();
    let (metrics, stop, running) = run_ingest(&p);
    for i in 0..3 {
        p.produce(&system, &batch(&system, &format!("b{i}"), hour_ago() + i * 10_000_000)).await;
    }
    wait_until_systemic(&metrics, "a database refusing harmless content is systemic").await;
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0);
    client.batch_execute("DROP TRIGGER refuse_all ON ingested_batches").await.unwrap();
    p.wait_for("SELECT count(*) FROM ingested_batches", 3, Duration::from_secs(30)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0);
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_system_ids_is_answered_mostly_from_memory() {
    let p = TestPipeline::new(&[]).await;
    let store = p.store();
    let cache = manifold::store::EquipmentCatalogue::default();
    cache.reload_all(&store).await.unwrap();
    for i in 0..2_000 {
        assert!(cache.get_or_load(&store, &format!("random-{i}")).await.unwrap().is_none());
    }
    assert!(cache.lookups() <= 120, "{} database look-ups for 2000 unknown ids", cache.lookups());
    assert!(cache.absent_count() <= cache.lookups() as usize);
    // A known absence is answered from memory, without a look-up.
    let before = cache.lookups();
    assert!(cache.get_or_load(&store, "random-0").await.unwrap().is_none());
    assert_eq!(cache.lookups(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebalance_while_a_chunk_is_written_never_moves_an_offset_backwards_nor_writes_a_message_twice() {
    let p = TestPipeline::new(&[("MANIFOLD__TOPICS__PARTITIONS", "2"), ("MANIFOLD__INGEST__CHUNK_MAX_DELAY_MS", "200")]).await;
    let prefix = p.rigs(4).await;
    let client = common::connect(&p.db_url).await;
    // Offsets moving backwards are recorded; while `hold_commit` is on, a commit that moved an
    // offset takes 3 s per partition to finish (a deferred trigger runs at COMMIT), so other
    // sessions keep seeing the old offset meanwhile: the write is in flight, for certain.
    client
        .batch_execute(
            "CREATE TABLE offset_regressions (partition int, old bigint, new bigint); \
             CREATE FUNCTION note_regression() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.next_offset < OLD.next_offset THEN \
                 INSERT INTO offset_regressions VALUES (NEW.partition, OLD.next_offset, NEW.next_offset); END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER note_regression BEFORE UPDATE ON ingest_offsets FOR EACH ROW EXECUTE FUNCTION note_regression(); \
             CREATE TABLE hold_commit (held boolean NOT NULL); INSERT INTO hold_commit VALUES (false); \
             CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF (SELECT held FROM hold_commit) THEN PERFORM pg_sleep(3); END IF; RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER hold AFTER UPDATE ON ingest_offsets DEFERRABLE INITIALLY DEFERRED \
               FOR EACH ROW EXECUTE FUNCTION hold();",
        )
        .await
        .unwrap();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let running_a = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Ingest, p.config.clone(), Metrics::new(), stop_a.clone()));

    let start = hour_ago();
    let mut n = 0i64;
    let produce_round = async |n: &mut i64| {
        for _ in 0..20 {
            let system = format!("{prefix}-{}", *n % 4);
            p.produce(&system, &batch(&system, &format!("b{n}"), start + *n * 10_000_000)).await;
            *n += 1;
        }
        // A sensor the rig does not have: a dead letter per round.
        let system = format!("{prefix}-0");
        let bad = BatchBuilder::new(&system).id(format!("bad{n}")).per_second("NOPE", start, vec![100.0; 10]);
        p.produce(&system, &bad.json()).await;
    };
    produce_round(&mut n).await;
    p.wait_for("SELECT count(*) FROM ingested_batches", 20, Duration::from_secs(60)).await;

    // A's next commit is held; a second consumer joins meanwhile (a rebalance).
    client.batch_execute("UPDATE hold_commit SET held = true").await.unwrap();
    produce_round(&mut n).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    client.batch_execute("UPDATE hold_commit SET held = false").await.unwrap();
    let running_b = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Ingest, p.config.clone(), Metrics::new(), stop_b.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;
    produce_round(&mut n).await;

    p.wait_for("SELECT count(*) FROM ingested_batches", 60, Duration::from_secs(90)).await;
    p.wait_for("SELECT count(*) FROM dead_letters", 3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM offset_regressions").await, 0, "a stored offset moved backwards");
    assert_eq!(p.query_i64("SELECT coalesce(sum(duplicates), 0)::int8 FROM ingested_batches").await, 0, "no message was written twice");
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 3, "each bad message dead-lettered once");
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 600, "each reading stored once");
    stop_b.cancel();
    stop_a.cancel();
    running_b.await.unwrap().unwrap();
    running_a.await.unwrap().unwrap();
}
