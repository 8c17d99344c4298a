"""The fleet arithmetic of docs/capacity.md, from the medians that measure.py wrote.

  python3 benches/capacity/fleet.py [/tmp/capacity/raw.json] [--tables]

Prints every step with its inputs, so each figure in the document can be traced to a measured
one. Nothing here is measured; the published compression ratios are parameters (see the
document for their sources).
"""

import json
import math
import statistics
import sys

DAY = 86_400
RIGS = 10_000
WINDOW_S = 60
# Readings a rig produces per second: 17 sensors at 1 Hz, or PS1-6 and EPS1 at 100 Hz,
# FS1-2 at 10 Hz and the other 8 sensors at 1 Hz.
RATE_1HZ = 17
RATE_NATIVE = 7 * 100 + 2 * 10 + 8 * 1
READINGS_RETENTION_DAYS = 30  # storage.retention_days
AUX_RETENTION_DAYS = 90  # storage.aux_retention_days
KAFKA_RETENTION_DAYS = 7  # topics.batches.retention_hours = 168
REPLICATION = 3  # a production Kafka cluster's replication factor (the stack runs 1)
COMPRESSION = (10, 20)  # published TimescaleDB ratios: 90 % and 95 % smaller
COPY_ROW_BYTES = 2 + 3 * 4 + 8 + 4 + 8  # binary COPY: field count, 3 lengths, time, series, value
TARGET_UTILISATION = 0.6  # cores are provisioned so the measured cost fills 60 % of them


def medians(raw, config):
    rounds = [r for r in raw if f"{r['rates']} P={r['partitions']}" == config]
    if not rounds:
        sys.exit(f"no rounds for {config}")
    keys = {k for r in rounds for k, v in figs(r).items() if isinstance(v, (int, float))}
    out = {k: statistics.median(figs(r)[k] for r in rounds if k in figs(r)) for k in keys}
    # The WAL figure is the cluster-wide LSN advance, other databases' writes included: the
    # quietest round is the closest to manifold's own.
    out["wal_bytes_per_reading"] = min(figs(r)["wal_bytes_per_reading"] for r in rounds)
    return out, len(rounds)


def figs(r):
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from measure import figures

    return figures(r)


def fleet(name, per_rig, m, aux_m, log, native=False):
    rate = RIGS * per_rig
    windows = RIGS / WINDOW_S
    log(f"### {name}: {RIGS:,} rigs x {per_rig} readings/s = {rate:,.0f} readings/s; {RIGS:,} / {WINDOW_S} s = {windows:,.1f} windows/s (one batch per rig and window)")
    readings_day = rate * DAY
    log(f"readings per day: {rate:,.0f} x {DAY:,} = {readings_day / 1e9:,.1f} G")

    def cores(label, per_m, unit_rate, unit="M readings"):
        c = unit_rate * per_m
        log(f"{label}: {unit_rate:,.3f} {unit}/s x {per_m:.3f} CPU-s = {c:,.2f} cores busy -> {math.ceil(c / TARGET_UTILISATION)} cores at {TARGET_UTILISATION:.0%}")
        return c

    mr = rate / 1e6
    ingest = cores("ingest (manifold)", m["manifold_cpu_s_per_M"], mr)
    pg_w = cores("PostgreSQL, ingest backends", m["pg_db_cpu_s_per_M"], mr)
    pg_shared = cores("PostgreSQL, walwriter/checkpointer/bgwriter (upper bound: shared)", m["pg_shared_cpu_s_per_M"], mr)
    k_in = cores("Kafka broker, produce (RF 1)", m["kafka_produce_cpu_s_per_M"], mr)
    k_out = cores("Kafka broker, fetch by ingest (RF 1)", m["kafka_fetch_cpu_s_per_M"], mr)
    inf = cores("infer (manifold)", m.get("infer_cpu_s_per_1k_windows", float("nan")), windows / 1000, "k windows")
    inf_pg = cores("PostgreSQL, infer backends", m.get("infer_pg_cpu_s_per_1k_windows", float("nan")), windows / 1000, "k windows")
    per_instance = m["ingest_readings_per_s"]
    log(f"one ingest instance stored {per_instance:,.0f} readings/s here -> {rate:,.0f} / {per_instance:,.0f} = {rate / per_instance:,.2f} instances at the rate this box reached")

    pg_row = m["pg_bytes_per_reading"]
    day_pg = readings_day * pg_row
    log(f"PostgreSQL readings (heap + index): {readings_day / 1e9:,.1f} G x {pg_row:.1f} B = {day_pg / 1e12:,.2f} TB/day; x {READINGS_RETENTION_DAYS} d = {day_pg * READINGS_RETENTION_DAYS / 1e12:,.1f} TB")
    for ratio in COMPRESSION:
        log(f"  compressed {ratio}x (published TimescaleDB range): {day_pg / ratio / 1e12:,.3f} TB/day; x {READINGS_RETENTION_DAYS} d = {day_pg / ratio * READINGS_RETENTION_DAYS / 1e12:,.1f} TB")
    agg = readings_day * m["pg_1m_bytes_per_reading"]
    log(f"readings_1m: {readings_day / 1e9:,.1f} G x {m['pg_1m_bytes_per_reading']:.3f} B = {agg / 1e9:,.1f} GB/day")
    batches_day = windows * DAY
    # Per-message and per-window rows come from the 1 Hz rounds (thousands of rows, not 72).
    ids = batches_day * aux_m["batch_ids_bytes_per_batch"]
    log(f"batch ids: {batches_day / 1e6:,.1f} M batches/day x {aux_m['batch_ids_bytes_per_batch']:.0f} B = {ids / 1e9:,.2f} GB/day; x {AUX_RETENTION_DAYS} d = {ids * AUX_RETENTION_DAYS / 1e12:,.2f} TB")
    per_window = aux_m["windows_table_bytes_per_window"] + aux_m["outbox_bytes_per_window"] + aux_m.get("scores_bytes_per_window", 0)
    aux = batches_day * per_window
    log(f"windows + outbox + scores: {batches_day / 1e6:,.1f} M windows/day x {per_window:.0f} B = {aux / 1e9:,.2f} GB/day; x {AUX_RETENTION_DAYS} d = {aux * AUX_RETENTION_DAYS / 1e12:,.2f} TB")
    wal = rate * m["wal_bytes_per_reading"]
    log(f"WAL (lowest round; cluster-wide, so an upper bound): {rate:,.0f} x {m['wal_bytes_per_reading']:.1f} B = {wal / 1e6:,.1f} MB/s (shipped to each standby)")

    avro = rate * m["avro_bytes_per_reading"]
    kdisk = rate * m["kafka_disk_bytes_per_reading"]
    log(f"Kafka in (Avro as sent): {rate:,.0f} x {m['avro_bytes_per_reading']:.2f} B = {avro / 1e6:,.1f} MB/s; as stored (lz4 batches): {m['kafka_disk_bytes_per_reading']:.2f} B -> {kdisk / 1e6:,.1f} MB/s")
    if native:
        # The simulator repeats each 1 s value 100 times, which lz4 all but removes; real
        # 100 Hz data will not compress like that, so the uncompressed Avro size is used.
        kdisk = avro
        log(f"  (native: lz4 of repeated values is not representative; using the uncompressed {m['avro_bytes_per_reading']:.2f} B -> {kdisk / 1e6:,.1f} MB/s)")
    log(f"Kafka disk: {kdisk * DAY / 1e12:,.2f} TB/day x RF {REPLICATION} x {KAFKA_RETENTION_DAYS} d = {kdisk * DAY * REPLICATION * KAFKA_RETENTION_DAYS / 1e12:,.1f} TB")
    log(f"network: device->Kafka {kdisk / 1e6:,.1f} MB/s; replication {REPLICATION - 1} x {kdisk / 1e6:,.1f} MB/s; Kafka->ingest {kdisk / 1e6:,.1f} MB/s; ingest->PostgreSQL (binary COPY, {COPY_ROW_BYTES} B/row) {rate * COPY_ROW_BYTES / 1e6:,.1f} MB/s; WAL to each standby {wal / 1e6:,.1f} MB/s")
    return {"ingest": ingest, "pg": pg_w + pg_shared, "kafka": k_in + k_out, "infer": inf, "infer_pg": inf_pg, "pg_tb_day": day_pg / 1e12, "wal_mb_s": wal / 1e6}


def spread(values, fmt):
    values = sorted(values)
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(values[0])}–{fmt.format(values[-1])})" if len(values) > 1 else fmt.format(med)


def tables(raw):
    """The tables of docs/capacity.md section 1: median (min–max) per configuration."""
    configs = list(dict.fromkeys(f"{r['rates']} P={r['partitions']}" for r in raw))
    rows = {c: [figs(r) for r in raw if f"{r['rates']} P={r['partitions']}" == c] for c in configs}
    cols = [
        ("readings/s (one ingest)", "ingest_readings_per_s", "{:,.0f}"),
        ("manifold CPU-s/M", "manifold_cpu_s_per_M", "{:.2f}"),
        ("manifold steady", "manifold_steady_cpu_s_per_M", "{:.2f}"),
        ("PostgreSQL backends CPU-s/M", "pg_db_cpu_s_per_M", "{:.2f}"),
        ("PG shared writers CPU-s/M", "pg_shared_cpu_s_per_M", "{:.2f}"),
        ("Kafka produce CPU-s/M", "kafka_produce_cpu_s_per_M", "{:.2f}"),
        ("Kafka fetch CPU-s/M", "kafka_fetch_cpu_s_per_M", "{:.2f}"),
        ("other work (cores)", "ingest_other_cores", "{:.2f}"),
    ]
    print("| config | rounds | " + " | ".join(c[0] for c in cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for c, fs in rows.items():
        print(f"| {c} | {len(fs)} | " + " | ".join(spread([f[k] for f in fs], fmt) for _, k, fmt in cols) + " |")
    print()
    cols = [
        ("infer windows/s", "infer_windows_per_s", "{:,.1f}"),
        ("infer CPU-s/1k windows", "infer_cpu_s_per_1k_windows", "{:.2f}"),
        ("infer steady", "infer_steady_cpu_s_per_1k_windows", "{:.2f}"),
        ("PostgreSQL CPU-s/1k windows", "infer_pg_cpu_s_per_1k_windows", "{:.2f}"),
        ("Kafka CPU-s/1k windows", "infer_kafka_cpu_s_per_1k_windows", "{:.2f}"),
        ("scores B/window", "scores_bytes_per_window", "{:,.0f}"),
    ]
    print("| config | " + " | ".join(c[0] for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for c, fs in rows.items():
        print(f"| {c} | " + " | ".join(spread([f[k] for f in fs if k in f], fmt) for _, k, fmt in cols) + " |")
    print()
    cols = [
        ("PG heap", "pg_heap_bytes_per_reading", "{:.1f}"),
        ("PG index", "pg_index_bytes_per_reading", "{:.1f}"),
        ("PG heap+index", "pg_bytes_per_reading", "{:.1f}"),
        ("readings_1m", "pg_1m_bytes_per_reading", "{:.2f}"),
        ("whole database", "db_growth_bytes_per_reading", "{:.1f}"),
        ("WAL (cluster-wide)", "wal_bytes_per_reading", "{:.0f}"),
        ("Avro as sent", "avro_bytes_per_reading", "{:.2f}"),
        ("Kafka log (lz4)", "kafka_disk_bytes_per_reading", "{:.2f}"),
    ]
    print("| config | " + " | ".join(c[0] for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for c, fs in rows.items():
        print(f"| {c} | " + " | ".join(spread([f[k] for f in fs], fmt) for _, k, fmt in cols) + " |")


def main():
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    raw = json.load(open(paths[0] if paths else "/tmp/capacity/raw.json"))
    if "--tables" in sys.argv:
        tables(raw)
        return
    one_hz = next((c for c in ("1hz P=6", "1hz P=3", "1hz P=12", "1hz P=1") if any(f"{r['rates']} P={r['partitions']}" == c for r in raw)))
    native = next((f"native P={r['partitions']}" for r in raw if r["rates"] == "native"), None)
    m1, n = medians(raw, one_hz)
    print(f"inputs: medians of {n} rounds of '{one_hz}'" + (f" and of '{native}'" if native else ""))
    fleet("(a) 1 Hz", RATE_1HZ, m1, m1, print)
    if native:
        m, n = medians(raw, native)
        print()
        fleet("(b) native rates", RATE_NATIVE, m, m1, print, native=True)


if __name__ == "__main__":
    main()
