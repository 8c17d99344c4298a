//! Seeded adversarial input for the whole-path fuzz test (`tests/fuzz_pipeline.rs`): arbitrary
//! bytes, Avro (through the real registry) and JSON batches with hostile content, interleaved
//! with good rig batches whose readings are known. Every case says what ingest may do with it.

use manifold::codec::RecordEncoder;
use manifold::domain::{RawBatch, Topology};
use manifold::rig::RIG_SENSORS;
use manifold::store::Store;

use super::batch::{BatchBuilder, per_second, regular, timed};

/// xorshift64*: small, fast and the same on every machine, so a seed reproduces a run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so 0 and small seeds still give a good state
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// Between `lo` and `hi` random bytes.
    pub fn bytes(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.range(lo, hi);
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A batch's identity and the readings it carries, per sensor: (sensor, count, sum).
#[derive(Debug, Clone)]
pub struct Known {
    pub system_id: String,
    pub batch_id: String,
    pub per_sensor: Vec<(String, u64, f64)>,
}

impl Known {
    fn of(batch: &RawBatch) -> Known {
        Known {
            system_id: batch.system_id.clone(),
            batch_id: batch.batch_id.clone().unwrap_or_default(),
            per_sensor: batch.series.iter().map(|s| (s.sensor_id.clone(), s.values.len() as u64, s.values.iter().sum())).collect(),
        }
    }
}

/// What ingest may do with one message.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Cannot be stored (undecodable, invalid id, non-finite, unknown system…): a dead letter.
    DeadLetter,
    /// A good batch: stored once, never dead-lettered.
    Stored(Known),
    /// The same bytes as an earlier good batch: skipped as a duplicate, never dead-lettered.
    Duplicate(Known),
    /// Hostile but perhaps acceptable: stored or dead-lettered, exactly one of the two.
    Either(Known),
}

pub struct Case {
    pub label: &'static str,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub expect: Expect,
}

/// Kinds of hostile input, produced round-robin first so a short run meets each of them.
const HOSTILE: [&str; 25] = [
    "json_nul_field_name", "json_huge_unknown_field", "empty_value", "null_value", "random_bytes", "huge_random_bytes", "bytes_near_the_size_limit",
    "framing_random_schema_id", "framing_truncated_header", "avro_truncated", "avro_invalid_utf8", "control_chars_in_ids",
    "raw_control_chars_in_json", "non_finite_json_tokens", "avro_non_finite", "extreme_values", "extreme_times",
    "duplicate_series", "very_many_series", "empty_arrays", "interval_and_times_us", "repeated_timestamps", "long_strings",
    "unknown_system", "wide_range_extremes",
];

/// Left out by `FUZZ_SKIP_KNOWN=1`: the two messages the issue names as stalling ingest and the
/// relay forever, and a dead letter that only fits the broker with its value cut (issue item 3).
/// The same knob also keeps NUL out of every string, strings under 8 KB, and the wide sensor
/// range at ±1e15 (whose sums cannot overflow; issue item 6).
const KNOWN_KILLERS: [&str; 3] = ["json_nul_field_name", "json_huge_unknown_field", "bytes_near_the_size_limit"];

/// A system registered with a very wide sensor range, so extreme values pass validation and
/// reach the 1-minute aggregate. `range` is the widest that `Topology::validate` accepted.
pub struct WideSystem {
    pub system_id: String,
    pub range: f64,
}

/// Registers `<system_id>` with one sensor `W1` whose range is the widest the validator takes.
pub async fn register_wide_system(store: &Store, system_id: &str, cap: f64) -> Option<WideSystem> {
    let owner = store.ensure_user("fuzz@manifold.local", "Fuzzer").await.expect("fuzz user");
    let id = manifold::domain::SystemId::parse(system_id).expect("wide system id");
    for range in [1e308, 1e300, 1e200, 1e100, 1e30, 1e15, 1e9, 1e6].into_iter().filter(|r| *r <= cap) {
        let topology: Topology = serde_json::from_value(serde_json::json!({
            "components": [{"id": "pump", "kind": "pump"}],
            "sensors": [{"id": "W1", "kind": "pressure", "unit": "bar", "sample_rate_hz": 1.0, "min": -range, "max": range, "component": "pump"}],
        }))
        .expect("topology json");
        if let Ok(valid) = topology.validate() {
            store.put_equipment(owner, &id, "fuzz: wide range", &valid).await.expect("register the wide system");
            return Some(WideSystem { system_id: system_id.to_owned(), range });
        }
    }
    None
}

pub struct Generator {
    rng: Rng,
    systems: Vec<String>,
    wide: Option<WideSystem>,
    encoder: RecordEncoder,
    skip_known: bool,
    /// Kinds left out by name (`FUZZ_SKIP`), to look past one finding at the rest.
    pub skip: Vec<String>,
    now_us: i64,
    /// Next start time per rig system for good batches (one minute apart).
    next_start: Vec<i64>,
    goods: Vec<(Vec<u8>, Known)>,
    hostile_made: usize,
    made: usize,
}

const MINUTE_US: i64 = 60_000_000;

impl Generator {
    pub fn new(seed: u64, systems: Vec<String>, wide: Option<WideSystem>, encoder: RecordEncoder, skip_known: bool) -> Self {
        let now_us = chrono::Utc::now().timestamp_micros();
        // Good data lives 20 days back, hostile-but-valid data 25 days back: inside retention,
        // clear of each other's windows.
        let base = (now_us - 20 * 86_400_000_000) / MINUTE_US * MINUTE_US;
        let next_start = (0..systems.len()).map(|_| base).collect();
        Generator { rng: Rng::new(seed), systems, wide, encoder, skip_known, skip: Vec::new(), now_us, next_start, goods: Vec::new(), hostile_made: 0, made: 0 }
    }

    pub async fn next_case(&mut self) -> Case {
        self.made += 1;
        let roll = self.rng.below(100);
        if roll < 45 || (roll < 50 && self.goods.is_empty()) {
            return self.good().await;
        }
        if roll < 50 {
            let (bytes, known) = self.goods[self.rng.below(self.goods.len())].clone();
            let key = Some(known.system_id.clone().into_bytes());
            return Case { label: "duplicate", key, value: Some(bytes), expect: Expect::Duplicate(known) };
        }
        let kinds: Vec<&'static str> = HOSTILE.iter().copied().filter(|k| !(self.skip.iter().any(|s| s == k) || self.skip_known && KNOWN_KILLERS.contains(k))).collect();
        let first_round = self.hostile_made < kinds.len();
        let kind = if first_round { kinds[self.hostile_made] } else { *self.rng.pick(&kinds) };
        self.hostile_made += 1;
        self.hostile(kind, first_round).await
    }

    async fn good(&mut self) -> Case {
        let s = self.rng.below(self.systems.len());
        let system = self.systems[s].clone();
        let start = self.next_start[s];
        self.next_start[s] += MINUTE_US;
        let n = self.rng.range(5, 60);
        let series = RIG_SENSORS
            .iter()
            .map(|sensor| {
                // Quarter steps inside the range: exact in binary, so sums compare exactly.
                let steps = ((sensor.max - sensor.min) * 4.0) as u64;
                let values = (0..n).map(|_| sensor.min + (self.rng.next_u64() % (steps + 1)) as f64 / 4.0).collect();
                per_second(sensor.id, start, values)
            })
            .collect::<Vec<_>>();
        let batch = BatchBuilder::new(&system).id(format!("good-{}", self.made)).produced_at(self.now_us).series(series).build();
        let avro = self.rng.chance(50);
        let bytes = self.encode(&batch, avro).await;
        let known = Known::of(&batch);
        self.goods.push((bytes.clone(), known.clone()));
        Case { label: if avro { "good_avro" } else { "good_json" }, key: Some(system.into_bytes()), value: Some(bytes), expect: Expect::Stored(known) }
    }

    async fn encode(&self, batch: &RawBatch, avro: bool) -> Vec<u8> {
        if avro { self.encoder.encode_batch(batch).await.expect("encode avro through the registry") } else { serde_json::to_vec(batch).expect("json") }
    }

    /// A plausible batch for a rig system, 25 days back, with in-range values.
    fn plausible(&mut self, sensors: usize, values: usize) -> RawBatch {
        let system = self.systems[self.rng.below(self.systems.len())].clone();
        let start = self.now_us - 25 * 86_400_000_000 + (self.rng.below(86_400) as i64) * 1_000_000;
        let series = RIG_SENSORS
            .iter()
            .take(sensors)
            .map(|sensor| {
                let values = (0..values).map(|i| sensor.min + (sensor.max - sensor.min) * ((i % 4) as f64) / 4.0).collect();
                per_second(sensor.id, start, values)
            })
            .collect::<Vec<_>>();
        BatchBuilder::new(&system).id(format!("hostile-{}", self.made)).series(series).build()
    }

    /// A string of `len` bytes of control characters (NUL included unless the known killers are
    /// left out), mixed with letters.
    fn control_text(&mut self, len: usize) -> String {
        let lowest = if self.skip_known { 1 } else { 0 };
        // The first is always a control character, so no draw makes a valid id by chance.
        (0..len)
            .map(|i| if i == 0 || self.rng.chance(50) { char::from(self.rng.range(lowest, 31) as u8) } else { char::from(b'a' + self.rng.below(26) as u8) })
            .collect()
    }

    fn random_key(&mut self, batch: Option<&RawBatch>) -> Option<Vec<u8>> {
        match self.rng.below(4) {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(self.rng.bytes(1, 64)),
            _ => batch.map(|b| b.system_id.clone().into_bytes()).or_else(|| Some(self.systems[0].clone().into_bytes())),
        }
    }

    /// A case of `kind`; the first round takes the harsher variant where there are two.
    async fn hostile(&mut self, kind: &'static str, first_round: bool) -> Case {
        let avro = self.rng.chance(50);
        let dead = |label, key, value: Vec<u8>| Case { label, key, value: Some(value), expect: Expect::DeadLetter };
        match kind {
            "json_nul_field_name" => dead(kind, self.random_key(None), br#"{"\u0000": 1}"#.to_vec()),
            "json_huge_unknown_field" => {
                let name: String = (0..self.rng.range(590_000, 620_000)).map(|_| char::from(b'a' + self.rng.below(26) as u8)).collect();
                let value = if self.rng.chance(50) {
                    format!("{{\"{name}\": 1}}").into_bytes()
                } else {
                    let mut v = serde_json::to_value(self.plausible(3, 5)).unwrap();
                    v[name.as_str()] = serde_json::json!(1);
                    serde_json::to_vec(&v).unwrap()
                };
                dead(kind, self.random_key(None), value)
            }
            "empty_value" => dead(kind, self.random_key(None), Vec::new()),
            "null_value" => Case { label: kind, key: self.random_key(None), value: None, expect: Expect::DeadLetter },
            "random_bytes" => {
                let mut bytes = self.rng.bytes(1, 2_000);
                bytes[0] = bytes[0].max(1); // a leading 0 is the Avro framing, its own case
                dead(kind, self.random_key(None), bytes)
            }
            "huge_random_bytes" => {
                let mut bytes = self.rng.bytes(100_000, 700_000);
                bytes[0] = bytes[0].max(1);
                dead(kind, self.random_key(None), bytes)
            }
            "bytes_near_the_size_limit" => {
                // Key and value just under the producer's message.max.bytes (1,000,000): as a
                // dead letter, with its headers, it no longer fits unless the value is cut.
                // A JSON unknown field that long also makes the longest error message.
                let key = self.rng.bytes(10, 2_000);
                let mut bytes = self.rng.bytes(999_300 - key.len(), 999_750 - key.len());
                if first_round || self.rng.chance(50) {
                    let name: String = (0..bytes.len() - 8).map(|_| char::from(b'a' + self.rng.below(26) as u8)).collect();
                    bytes = format!("{{\"{name}\": 1}}").into_bytes();
                }
                bytes[0] = bytes[0].max(1);
                dead(kind, Some(key), bytes)
            }
            "framing_random_schema_id" => {
                let mut bytes = vec![0];
                bytes.extend(self.rng.bytes(4, 68));
                dead(kind, self.random_key(None), bytes)
            }
            "framing_truncated_header" => {
                let mut bytes = vec![0];
                bytes.extend(self.rng.bytes(0, 3));
                dead(kind, self.random_key(None), bytes)
            }
            "avro_truncated" => {
                let batch = self.plausible(17, 20);
                let full = self.encode(&batch, true).await;
                let cut = self.rng.range(5, full.len() - 1);
                dead(kind, self.random_key(Some(&batch)), full[..cut].to_vec())
            }
            "avro_invalid_utf8" => {
                let mut batch = self.plausible(2, 3);
                batch.system_id = "\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}".into();
                let mut bytes = self.encode(&batch, true).await;
                let at = bytes.windows(6).position(|w| w == [1u8; 6]).expect("marker in the body");
                bytes[at..at + 6].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]);
                dead(kind, self.random_key(None), bytes)
            }
            "control_chars_in_ids" => {
                let mut batch = self.plausible(3, 4);
                let len = self.rng.range(1, 40);
                match self.rng.below(3) {
                    0 => batch.system_id = self.control_text(len),
                    1 => batch.batch_id = Some(self.control_text(len)),
                    _ => batch.series[1].sensor_id = self.control_text(len),
                }
                let value = self.encode(&batch, avro).await;
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "raw_control_chars_in_json" => {
                let batch = self.plausible(2, 2);
                let json = serde_json::to_string(&batch).unwrap();
                let low = if self.skip_known { 1 } else { 0 };
                let raw = char::from(self.rng.range(low, 31) as u8);
                let value = json.replacen("hostile-", &format!("hos{raw}tile-"), 1).into_bytes();
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "non_finite_json_tokens" => {
                let batch = self.plausible(2, 3);
                let json = serde_json::to_string(&batch).unwrap();
                let token = *self.rng.pick(&["NaN", "Infinity", "-Infinity", "1e309", "-1e999", "nan", "inf"]);
                let at = json.find("\"values\":[").expect("values") + "\"values\":[".len();
                let value = format!("{}{token},{}", &json[..at], &json[at..]).into_bytes();
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "avro_non_finite" => {
                let mut batch = self.plausible(3, 4);
                let i = self.rng.below(4);
                batch.series[self.rng.below(3)].values[i] = *self.rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
                let value = self.encode(&batch, true).await;
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "extreme_values" => {
                let mut batch = self.plausible(3, 4);
                let i = self.rng.below(4);
                batch.series[self.rng.below(3)].values[i] = *self.rng.pick(&[1e308, -1e308, f64::MAX, f64::MIN, 5e-324, -0.0, 1e-300]);
                self.either(kind, batch, avro).await
            }
            "extreme_times" => {
                let mut batch = self.plausible(2, 3);
                let t = *self.rng.pick(&[i64::MIN, i64::MAX, i64::MIN + 1, -1, 0, 253_402_300_799_999_999, -62_135_596_800_000_000]);
                let s = &mut batch.series[self.rng.below(2)];
                match self.rng.below(3) {
                    0 => s.start = t,
                    1 => s.interval_us = *self.rng.pick(&[i64::MAX, i64::MAX / 2, 1 << 62]),
                    _ => s.times_us = vec![t, t.wrapping_add(1), self.now_us],
                }
                if !avro && self.rng.chance(30) {
                    let text = serde_json::to_string(&batch).unwrap();
                    let year = *self.rng.pick(&["\"9999-12-31T23:59:59.999999Z\"", "\"0000-01-01T00:00:00Z\"", "\"+275760-09-13T00:00:00Z\"", "\"1969-12-31T23:59:59Z\""]);
                    let value = text.replacen(&format!("\"start\":{}", batch.series[0].start), &format!("\"start\":{year}"), 1).into_bytes();
                    return Case { label: kind, key: self.random_key(Some(&batch)), value: Some(value), expect: Expect::Either(Known::of(&batch)) };
                }
                self.either(kind, batch, avro).await
            }
            "duplicate_series" => {
                let mut batch = self.plausible(3, 4);
                let copy = batch.series[0].clone();
                batch.series.push(copy);
                let value = self.encode(&batch, avro).await;
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "very_many_series" => {
                let mut batch = self.plausible(17, 1);
                let n = self.rng.range(2_000, 8_000);
                batch.series.extend((0..n).map(|i| regular(&format!("X{i}"), 0, 0, vec![1.0])));
                let value = self.encode(&batch, avro).await;
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "empty_arrays" => {
                let mut batch = self.plausible(2, 3);
                match self.rng.below(3) {
                    0 => batch.series.clear(),
                    1 => batch.series.iter_mut().for_each(|s| s.values.clear()),
                    _ => batch.series[0].values.clear(),
                }
                let value = self.encode(&batch, avro).await;
                dead(kind, self.random_key(Some(&batch)), value)
            }
            "interval_and_times_us" => {
                let mut batch = self.plausible(2, 3);
                let start = batch.series[0].start;
                batch.series[0].times_us = vec![start, start + 7, start + 1_000_000];
                self.either(kind, batch, avro).await
            }
            "repeated_timestamps" => {
                let mut batch = self.plausible(2, 4);
                let start = batch.series[1].start;
                batch.series[1].interval_us = 0;
                batch.series[1].times_us = vec![start, start, start + 1, start];
                self.either(kind, batch, avro).await
            }
            "long_strings" => {
                let mut batch = self.plausible(2, 2);
                let len = if self.skip_known { self.rng.range(65, 8_000) } else { self.rng.range(65, 600_000) };
                let text: String = (0..len).map(|_| char::from(b'a' + self.rng.below(26) as u8)).collect();
                match self.rng.below(3) {
                    0 => batch.system_id = text,
                    1 => batch.batch_id = Some(text), // up to 160 characters is a valid batch id
                    _ => batch.series[0].sensor_id = text,
                }
                let value = self.encode(&batch, avro).await;
                Case { label: kind, key: self.random_key(None), value: Some(value), expect: Expect::Either(Known::of(&batch)) }
            }
            "unknown_system" => {
                let mut batch = self.plausible(3, 3);
                batch.system_id = format!("nobody-{}", self.rng.next_u64());
                let value = self.encode(&batch, avro).await;
                dead(kind, Some(batch.system_id.clone().into_bytes()), value)
            }
            "wide_range_extremes" => match &self.wide {
                None => {
                    let batch = self.plausible(1, 1);
                    self.either(kind, batch, avro).await
                }
                Some(wide) => {
                    let (system, range) = (wide.system_id.clone(), wide.range);
                    // Two minutes for all of them, so chunks add into the same aggregate buckets:
                    // one value near the top of the range per batch (each chunk's sum is finite,
                    // two chunks' sums are not), or many (the sum within one chunk overflows).
                    let single = self.rng.chance(50);
                    let minute = (self.now_us - 22 * 86_400_000_000) / MINUTE_US * MINUTE_US + if single { 0 } else { MINUTE_US };
                    let n = if single { 1 } else { self.rng.range(2, 30) };
                    let values = if single { vec![range * 0.9] } else { (0..n).map(|_| *self.rng.pick(&[range, -range, range, range * 0.999_999])).collect() };
                    let times_us = (0..n).map(|i| minute + i as i64 * 1_000_000 + self.rng.below(1_000) as i64).collect();
                    let batch = BatchBuilder::new(&system).id(format!("wide-{}", self.made)).series([timed("W1", minute, times_us, values)]).build();
                    self.either(kind, batch, avro).await
                }
            },
            other => unreachable!("no generator for {other}"),
        }
    }

    async fn either(&mut self, label: &'static str, batch: RawBatch, avro: bool) -> Case {
        let value = self.encode(&batch, avro).await;
        let key = Some(batch.system_id.clone().into_bytes());
        Case { label, key, value: Some(value), expect: Expect::Either(Known::of(&batch)) }
    }
}
