"""Sustained load run of `manifold run` (issue 12): first the closed-loop maximum (a preloaded
backlog ingested as fast as possible), then DURATION seconds at LOAD of that maximum from a
paced `manifold simulate`, with a probe batch every second (produce -> row visible), and
per-second samples of throughput, consumer lag, RSS and CPU per process. Writes CSV files and
summary.json into OUT; plot.py draws them. Started by benches/sustained/run.

Each phase gets a database and topics of its own on the shared stack, dropped at the end
(KEEP=1 keeps them).
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

READINGS_PER_CYCLE = 17 * 60  # one rig cycle: 17 sensors, 60 s at 1 Hz
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The probe's values: one per sensor, inside each sensor's valid range (src/rig/topology.rs).
PROBE_VALUES = {"PS1": 150.0, "PS2": 110.0, "PS3": 2.0, "PS4": 1.0, "PS5": 9.0, "PS6": 9.0, "EPS1": 2400.0,
                "FS1": 6.0, "FS2": 9.5, "TS1": 45.0, "TS2": 50.0, "TS3": 38.0, "TS4": 31.0, "VS1": 0.6,
                "CE": 30.0, "CP": 1.8, "SE": 55.0}


def log(msg):
    print(f"[sustained {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Proc:
    """CPU seconds and resident memory of one process, from /proc."""

    @staticmethod
    def ticks(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError):
            return None

    @staticmethod
    def rss_mb(pid, field="VmRSS:"):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def listener_pid(port):
    """The process listening on 127.0.0.1:`port` (the stack's broker; other engineers may run
    brokers of their own on other ports)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in list(f)[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                        inodes.add(fields[9])
        except OSError:
            continue
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


class Phase:
    """A database, topics and ids of their own, and the `manifold` processes run in them."""

    def __init__(self, name, manifold):
        self.manifold = manifold
        self.prefix = f"sus{os.getpid()}{name}{uuid.uuid4().hex[:6]}"
        admin = os.environ["DATABASE_URL"]
        self.admin_url = admin
        self.db = self.prefix.lower()
        self.db_url = admin.rsplit("/", 1)[0] + "/" + self.db
        self.listen = {role: free_port() for role in ("INGEST", "INFER", "API")}
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": self.db_url, "ENV": "test",
            "MANIFOLD__TELEMETRY__LOG_LEVEL": "warn",
            "MANIFOLD__INGEST__GROUP_ID": f"{self.prefix}-ingest",
            "MANIFOLD__INFER__GROUP_ID": f"{self.prefix}-infer",
            "MANIFOLD__INFER__TRANSACTIONAL_ID": f"{self.prefix}-infer-0",
            "MANIFOLD__RELAY__TRANSACTIONAL_ID": f"{self.prefix}-relay",
        })
        for role, port in self.listen.items():
            self.env[f"MANIFOLD__{role}__LISTEN"] = f"127.0.0.1:{port}"
        self.topics = {}
        for role in ("BATCHES", "DEAD_LETTERS", "WINDOWS_READY", "SCORES", "ALERTS", "RELAY_POSITION"):
            self.topics[role] = f"{self.prefix}.{role.lower()}"
            self.env[f"MANIFOLD__TOPICS__{role}__NAME"] = self.topics[role]
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {self.db}")
        self.cli("migrate")
        self.cli("topics", "create")
        self.conn = psycopg.connect(self.db_url, autocommit=True)
        self.run_proc = None

    def cli(self, *args):
        out = subprocess.run([self.manifold, *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"manifold {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def simulate(self, systems, cycles, speed, prefix="rig"):
        return subprocess.Popen([self.manifold, "simulate", "--systems", str(systems), "--cycles", str(cycles),
                                 "--speed", speed, "--prefix", prefix], env=self.env, stdout=subprocess.PIPE, text=True)

    def start_run(self):
        self.run_proc = subprocess.Popen([self.manifold, "run"], env=self.env, stdout=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.listen['INGEST']}/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.run_proc.poll() is not None:
                raise SystemExit("manifold run exited at start")
            time.sleep(0.2)
        raise SystemExit("manifold run not ready within 60 s")

    def stored(self, systems="%"):
        return self.conn.execute("SELECT coalesce(sum(readings), 0)::int8 FROM ingested_batches WHERE system_id LIKE %s",
                                 (systems,)).fetchone()[0]

    def metrics(self):
        """Counters and gauges of `manifold run` (one registry, served on the ingest listener)."""
        found = {"written": 0.0, "ingest_lag": 0.0, "infer_lag": 0.0, "scored": 0.0, "failed": 0.0, "dead": 0.0}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.listen['INGEST']}/metrics", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return None
        for line in body.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            series, value = line.rsplit(" ", 1)
            name = series.split("{", 1)[0]
            key = {"manifold_ingest_readings_written_total": "written",
                   "manifold_ingest_consumer_lag_messages": "ingest_lag",
                   "manifold_infer_consumer_lag_messages": "infer_lag",
                   "manifold_infer_windows_scored_total": "scored",
                   "manifold_infer_windows_failed_total": "failed",
                   "manifold_ingest_dead_letters_total": "dead"}.get(name)
            if key:
                found[key] += float(value)
        return found

    def stop(self):
        if self.run_proc and self.run_proc.poll() is None:
            self.run_proc.send_signal(signal.SIGTERM)
            try:
                self.run_proc.wait(30)
            except subprocess.TimeoutExpired:
                self.run_proc.kill()
                self.run_proc.wait()

    def drop(self):
        self.stop()
        self.conn.close()
        if os.environ.get("KEEP"):
            log(f"kept database {self.db} and topics {self.prefix}.*")
            return
        # FORCE cannot end an autovacuum worker this role does not own: retry until it is gone.
        for attempt in range(30):
            try:
                with psycopg.connect(self.admin_url, autocommit=True) as c:
                    c.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
                break
            except psycopg.Error as e:
                if attempt == 29:
                    log(f"could not drop database {self.db}: {e}")
                time.sleep(2)
        admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BROKERS"]})
        for future in admin.delete_topics(list(self.topics.values())).values():
            try:
                future.result(30)
            except Exception as e:  # a topic never created is fine
                log(f"delete topic: {e}")


def measure_max(manifold, readings, systems):
    """Closed loop: preload, then time `manifold run` from its first stored chunk to the last."""
    phase = Phase("max", manifold)
    try:
        cycles = max(1, readings // (systems * READINGS_PER_CYCLE))
        began = time.time()
        sim = phase.simulate(systems, cycles, "max")
        report = json.loads(sim.communicate()[0].strip().splitlines()[-1])
        if sim.returncode != 0:
            raise SystemExit("preload failed")
        total = report["readings"]
        log(f"preloaded {total} readings ({systems} systems x {cycles} cycles) in {time.time() - began:.1f} s")
        phase.start_run()
        pid = phase.run_proc.pid
        spawned, first, ticks0 = time.time(), None, Proc.ticks(pid)
        peak = 0.0
        while True:
            stored = phase.stored()
            peak = max(peak, Proc.rss_mb(pid, "VmHWM:"))
            if stored > 0 and first is None:
                first = (time.time(), stored, Proc.ticks(pid))
            if stored >= total:
                break
            if time.time() - spawned > 1800:
                raise SystemExit(f"closed loop: {stored} of {total} after 30 min")
            time.sleep(0.05)
        end, ticks1 = time.time(), Proc.ticks(pid)
        t0, n0, k0 = first
        if n0 >= total:  # a backlog of one chunk can only be timed from the start
            t0, n0, k0 = spawned, 0, ticks0
        rate = (total - n0) / (end - t0)
        cpu = (ticks1 - k0) / CLK_TCK / (end - t0)
        result = {"readings": total, "systems": systems, "readings_per_s": rate, "manifold_cpu_cores": cpu,
                  "peak_rss_mb": peak, "seconds": end - t0, "loadavg": os.getloadavg()}
        log(f"closed-loop maximum: {rate:,.0f} readings/s ({total - n0} readings in {end - t0:.1f} s), "
            f"manifold {cpu:.2f} cores, peak RSS {peak:.1f} MB")
        return result
    finally:
        phase.drop()


class Probe(threading.Thread):
    """A tagged batch every second from a live device (event time now), then polls the
    database every 10 ms until its rows are visible: produce -> row-visible latency."""

    def __init__(self, phase, system, stop):
        super().__init__(daemon=True)
        self.phase, self.system, self.stop = phase, system, stop
        self.samples = []  # (seconds since start, latency s)
        self.lost = 0

    def run(self):
        producer = Producer({"bootstrap.servers": os.environ["KAFKA_BROKERS"], "linger.ms": 0, "acks": "all",
                             "enable.idempotence": True})
        conn = psycopg.connect(self.phase.db_url, autocommit=True)
        pending, k, started = {}, 0, time.time()
        next_send = started
        while not self.stop.is_set() or pending:
            now = time.time()
            if now >= next_send and not self.stop.is_set():
                second_us = int(now) * 1_000_000
                batch_id = f"probe-{k}"
                batch = {"batch_id": batch_id, "system_id": self.system, "produced_at": int(now * 1e6),
                         "series": [{"sensor_id": s, "start": second_us, "interval_us": 1_000_000, "values": [v]}
                                    for s, v in PROBE_VALUES.items()]}
                pending[batch_id] = time.time()
                producer.produce(self.phase.topics["BATCHES"], key=self.system, value=json.dumps(batch).encode())
                producer.poll(0)
                k += 1
                next_send += 1.0
            if pending:
                rows = conn.execute("SELECT batch_id FROM ingested_batches WHERE system_id = %s AND batch_id = ANY(%s)",
                                    (self.system, list(pending))).fetchall()
                seen = time.time()
                for (batch_id,) in rows:
                    sent = pending.pop(batch_id)
                    self.samples.append((sent - started, seen - sent))
                for batch_id, sent in list(pending.items()):
                    if self.stop.is_set() and seen - sent > 120:
                        pending.pop(batch_id)
                        self.lost += 1
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(10)
        conn.close()


def sampler(phase, pids, out, stop, started):
    """One row a second: throughput, lag, RSS and CPU per process, load average."""
    kafka = listener_pid(int(os.environ["KAFKA_BROKERS"].split(",")[0].rsplit(":", 1)[1]))
    own_backend = phase.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    prev_ticks, prev_t, prev_written = {}, time.time(), None
    rows = []
    while not stop.is_set():
        time.sleep(1.0 - (time.time() - started) % 1.0)
        now = time.time()
        m = phase.metrics()
        backends = [r[0] for r in phase.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s", (own_backend,))]
        groups = {"manifold": [pids["manifold"]], "simulate": [pids["simulate"]] if pids.get("simulate") else [],
                  "postgres": backends, "kafka": [kafka] if kafka else []}
        row = {"t": round(now - started, 2)}
        dt = now - prev_t
        for group, members in groups.items():
            cpu = 0.0
            for pid in members:
                ticks = Proc.ticks(pid)
                if ticks is not None and pid in prev_ticks:
                    cpu += (ticks - prev_ticks[pid]) / CLK_TCK / dt
                if ticks is not None:
                    prev_ticks[pid] = ticks
            row[f"{group}_cpu"] = round(cpu, 3)
        row["manifold_rss_mb"] = round(Proc.rss_mb(pids["manifold"]), 1)
        row["simulate_rss_mb"] = round(Proc.rss_mb(pids["simulate"]), 1) if pids.get("simulate") else 0.0
        if m:
            row["readings_per_s"] = round((m["written"] - prev_written) / dt) if prev_written is not None else 0
            prev_written = m["written"]
            row["ingest_lag_messages"] = m["ingest_lag"]
            row["infer_lag_messages"] = m["infer_lag"]
            row["windows_scored"] = m["scored"]
            row["dead_letters"] = m["dead"]
        row["loadavg1"] = os.getloadavg()[0]
        prev_t = now
        rows.append(row)
    out.extend(rows)


def window_latencies(phase, since):
    """Window-ready -> first score row, per window revision: from the outbox row that announced
    it (created at the start of the chunk's transaction that made it ready) to the score rows'
    computed_at (the start of infer's transaction), both by the database clock."""
    return phase.conn.execute("""
        WITH r AS (
            SELECT o.created_at, j->>'system_id' AS system_id,
                   to_timestamp((j->>'window_start')::float8 / 1e6) AS window_start, (j->>'revision')::int AS revision
            FROM outbox o, LATERAL (SELECT convert_from(o.payload, 'UTF8')::jsonb AS j) p
            WHERE o.topic_role = 'windows_ready')
        SELECT extract(epoch FROM r.created_at)::float8 - %s,
               extract(epoch FROM min(s.computed_at) - r.created_at)::float8
        FROM r LEFT JOIN anomaly_scores s
          ON s.system_id = r.system_id AND s.window_start = r.window_start AND s.revision = r.revision
        GROUP BY r.created_at, r.system_id, r.window_start, r.revision
        ORDER BY 1""", (since,)).fetchall()


def write_csv(path, rows, columns):
    with open(path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in rows:
            f.write(",".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + "\n")


def sustained(manifold, target, duration, out):
    # Bursts every ~0.25 s: each burst is one 60 s cycle of every system (a time-lapse, so
    # event times are in the past and windows close as their cycle is stored).
    systems = max(1, round(target * 0.25 / READINGS_PER_CYCLE))
    speed = target * 60 / (systems * READINGS_PER_CYCLE)
    cycles = max(1, round(duration * speed / 60))
    phase = Phase("paced", manifold)
    try:
        # Equipment first (the simulator registers what is missing before it sends), so the
        # clock starts with the first burst.
        phase.cli("simulate", "--systems", "1", "--cycles", "0", "--prefix", "probe")
        phase.cli("simulate", "--systems", str(systems), "--cycles", "0", "--prefix", "rig")
        phase.start_run()
        log(f"paced: {systems} systems at speed {speed:.1f} ({target:,.0f} readings/s target), {cycles} cycles, {duration} s")
        db_start = phase.conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0]
        started = time.time()
        sim = phase.simulate(systems, cycles, f"{speed:.4f}")
        stop, samples = threading.Event(), []
        probe = Probe(phase, "probe-0", stop)
        probe.start()
        pids = {"manifold": phase.run_proc.pid, "simulate": sim.pid}
        sample_thread = threading.Thread(target=sampler, args=(phase, pids, samples, stop, started), daemon=True)
        sample_thread.start()
        report = json.loads(sim.communicate()[0].strip().splitlines()[-1])
        sent_for = time.time() - started
        total = report["readings"]
        # Drain: until everything sent is stored and every window announced is scored (or two
        # minutes pass), still sampling.
        drain_deadline = time.time() + 120
        while time.time() < drain_deadline:
            m = phase.metrics() or {}
            announced = phase.conn.execute("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'").fetchone()[0]
            if phase.stored("rig-%") >= total and m.get("scored", 0) + m.get("failed", 0) >= announced:
                break
            time.sleep(1)
        drained_for = time.time() - started - sent_for
        time.sleep(2)
        stop.set()
        probe.join(150)
        sample_thread.join(10)
        stored = phase.stored("rig-%")
        windows = window_latencies(phase, db_start)
        peak = Proc.rss_mb(phase.run_proc.pid, "VmHWM:")
        dead = phase.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    finally:
        phase.drop()

    write_csv(os.path.join(out, "samples.csv"), samples,
              ["t", "readings_per_s", "ingest_lag_messages", "infer_lag_messages", "windows_scored", "dead_letters",
               "manifold_cpu", "manifold_rss_mb", "simulate_cpu", "simulate_rss_mb", "postgres_cpu", "kafka_cpu", "loadavg1"])
    write_csv(os.path.join(out, "probes.csv"), [{"t": round(t, 3), "latency_ms": round(l * 1000, 1)} for t, l in probe.samples],
              ["t", "latency_ms"])
    write_csv(os.path.join(out, "windows.csv"),
              [{"ready_t": round(t, 3), "latency_ms": None if l is None else round(l * 1000, 1)} for t, l in windows],
              ["ready_t", "latency_ms"])
    steady = [s for s in samples if 10 <= s["t"] <= sent_for]
    latencies = [l for _, l in probe.samples]
    scored = [l for _, l in windows if l is not None]
    return {
        "target_readings_per_s": target, "systems": systems, "speed": speed, "cycles": cycles,
        "sent_readings": total, "sent_seconds": sent_for, "drained_seconds_after": drained_for, "stored_readings": stored,
        "readings_per_s_mean": statistics.mean(s.get("readings_per_s", 0) for s in steady) if steady else None,
        "readings_per_s_sent": total / sent_for,
        "ingest_lag_messages_max": max((s.get("ingest_lag_messages", 0) for s in steady), default=None),
        "infer_lag_messages_max": max((s.get("infer_lag_messages", 0) for s in steady), default=None),
        "probes": len(latencies), "probes_lost": probe.lost,
        "probe_p50_ms": percentile(latencies, 0.50) * 1000, "probe_p99_ms": percentile(latencies, 0.99) * 1000,
        "probe_max_ms": max(latencies, default=float("nan")) * 1000,
        "windows_ready": len(windows), "windows_unscored": sum(1 for _, l in windows if l is None),
        "window_score_p50_ms": percentile(scored, 0.50) * 1000, "window_score_p95_ms": percentile(scored, 0.95) * 1000,
        "manifold_peak_rss_mb": peak,
        "manifold_cpu_mean": statistics.mean(s["manifold_cpu"] for s in steady) if steady else None,
        "postgres_cpu_mean": statistics.mean(s["postgres_cpu"] for s in steady) if steady else None,
        "kafka_cpu_mean": statistics.mean(s["kafka_cpu"] for s in steady) if steady else None,
        "simulate_cpu_mean": statistics.mean(s["simulate_cpu"] for s in steady) if steady else None,
        "loadavg1_mean": statistics.mean(s["loadavg1"] for s in steady) if steady else None,
        "loadavg1_max": max((s["loadavg1"] for s in steady), default=None),
        "dead_letters": dead,
    }


def main():
    manifold = os.environ.get("MANIFOLD", "target/release/manifold")
    out = os.environ.get("OUT", "benches/sustained/out")
    duration = float(os.environ.get("DURATION", "600"))
    load = float(os.environ.get("LOAD", "0.8"))
    os.makedirs(out, exist_ok=True)
    summary = {"cores": os.cpu_count(), "duration_s": duration, "load": load,
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_at_start": os.getloadavg()}
    if os.environ.get("MAX_RATE"):
        summary["max"] = {"readings_per_s": float(os.environ["MAX_RATE"]), "given": True}
    else:
        summary["max"] = measure_max(manifold, int(os.environ.get("MAX_READINGS", "6000000")),
                                     int(os.environ.get("MAX_SYSTEMS", "32")))
    target = load * summary["max"]["readings_per_s"]
    summary["sustained"] = sustained(manifold, target, duration, out)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
