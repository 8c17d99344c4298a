"""Capacity measurement: CPU-seconds per million readings for manifold ingest and for
PostgreSQL separately, the effect of the input topic's partition count, bytes per reading on
disk (PostgreSQL and Kafka) and on the wire, and CPU-seconds per 1,000 windows scored.

Run through benches/capacity/run (it picks the Python and explains the environment). Each
round uses a fresh database and fresh topics on the running stack (never restarted):

  1. preload: `manifold simulate --speed max` writes SYSTEMS x CYCLES rig cycles (Avro) into an
     input topic of P partitions;
  2. ingest: `manifold ingest` (with its relay) stores the backlog as fast as it can; timed
     from the first stored chunk to the last, CPU taken from process start until the relay has
     published every window-ready event;
  3. infer: `manifold infer` scores every announced window.

CPU comes from /proc/PID/stat (utime + stime): the manifold process; the PostgreSQL backends
connected to the round's database (found under the stack's postmaster, the process listening
on DATABASE_URL's port; the probe connection this script polls with is left out); the
cluster's shared writers (walwriter, checkpointer, background writer), which serve every
database on the cluster; the Kafka broker (the process listening on KAFKA_BROKERS' port),
which is shared too. /proc/stat gives the whole box's busy time, so what other work took is
reported beside each phase.
"""

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

TICK = os.sysconf("SC_CLK_TCK")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RIG_SENSORS = 17
# Readings in one 60 s rig cycle: 17 sensors at 1 Hz, or at the rig's native rates
# (PS1-6 and EPS1 at 100 Hz, FS1-2 at 10 Hz, the other 8 at 1 Hz).
PER_CYCLE = {"1hz": RIG_SENSORS * 60, "native": (7 * 100 + 2 * 10 + 8 * 1) * 60}


def env_int(name, default):
    return int(os.environ.get(name, default))


def log(msg):
    print(f"[capacity] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid):
    """utime + stime of a process (all its threads, living and exited), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def box_busy_seconds():
    """CPU-seconds the whole box was busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def listener_pid(port):
    """The process listening on 127.0.0.1/0.0.0.0:port (by socket inode)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
        except FileNotFoundError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return None


def kafka_log_dirs(broker_pid):
    """log.dirs from the broker's server.properties (the last .properties argument)."""
    props = [a for a in cmdline(broker_pid).split() if a.endswith(".properties")]
    if not props:
        return []
    dirs = []
    with open(props[-1]) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key in ("log.dirs", "log.dir"):
                dirs = value.split(",")
    return dirs


# ---------------------------------------------------------------- sampling


class Sampler:
    """Samples CPU of the processes that matter every `period` seconds, per category.

    A process first seen after the start counts from zero, one seen at the start from its
    value then; a process that exits keeps its last sampled value (at most one period lost).
    """

    AUX = ("walwriter", "checkpointer", "background writer", "autovacuum launcher", "logical replication launcher")

    def __init__(self, postmaster, broker, database, probe_pid, period=0.2):
        self.postmaster, self.broker, self.database, self.probe_pid = postmaster, broker, database, probe_pid
        self.period = period
        self.tracked = {}  # pid -> [category, first, last]
        self.extra = {}  # pid -> category (manifold processes)
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread = None

    def watch(self, pid, category):
        with self.lock:
            self.extra[pid] = category
            value = cpu_seconds(pid)
            if value is not None and pid not in self.tracked:
                # Just spawned: everything it used belongs to the phase.
                self.tracked[pid] = [category, 0.0, value]

    def category_of_pg(self, pid):
        cmd = cmdline(pid)
        if not cmd.startswith("postgres:"):
            return None
        words = cmd.split()
        if pid == self.probe_pid:
            return None
        if any(cmd.startswith(f"postgres: {a}") for a in self.AUX):
            return "pg_shared"
        if self.database in words[1:4]:
            return "pg_db"
        return None  # another database's backend: someone else's work

    def sample(self, first=False):
        seen = []
        for pid in children(self.postmaster):
            seen.append((pid, None))
        seen.append((self.postmaster, "pg_shared"))
        if self.broker:
            seen.append((self.broker, "kafka"))
        with self.lock:
            seen.extend(self.extra.items())
            for pid, category in seen:
                value = cpu_seconds(pid)
                if value is None:
                    continue
                if pid in self.tracked:
                    self.tracked[pid][2] = value
                    continue
                if category is None:
                    category = self.category_of_pg(pid)
                    if category is None:
                        continue
                self.tracked[pid] = [category, value if first else 0.0, value]

    def snapshot(self):
        """CPU-seconds per category so far (for the steady part of a phase)."""
        self.sample()
        with self.lock:
            out = {}
            for category, first, last in self.tracked.values():
                out[category] = out.get(category, 0.0) + (last - first)
        return out

    def _run(self):
        while not self.stop_flag.wait(self.period):
            self.sample()

    def start(self):
        self.started, self.box0 = time.monotonic(), box_busy_seconds()
        self.sample(first=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.sample()
        self.stop_flag.set()
        self.thread.join()
        wall = time.monotonic() - self.started
        box = box_busy_seconds() - self.box0
        out = {"wall_s": wall, "box_busy_s": box}
        for category, first, last in self.tracked.values():
            out[category] = out.get(category, 0.0) + (last - first)
        mine = sum(v for k, v in out.items() if k not in ("wall_s", "box_busy_s", "kafka", "pg_shared"))
        out["other_s"] = max(0.0, box - mine - out.get("kafka", 0.0) - out.get("pg_shared", 0.0))
        return out


# ---------------------------------------------------------------- PostgreSQL


class Psql:
    """One long-lived psql session: queries cost no connection each, and its backend is known."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.pid = int(self.one("SELECT pg_backend_pid()"))

    def rows(self, sql):
        self.proc.stdin.write(sql.strip().rstrip(";") + ";\n\\echo __end__\n")
        self.proc.stdin.flush()
        out = []
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == "__end__":
                return out
            if line:
                out.append(line.split("\t"))
        raise RuntimeError("psql ended")

    def one(self, sql):
        rows = self.rows(sql)
        if not rows:
            raise RuntimeError(f"no row from: {sql}")
        return rows[0][0]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def table_sizes(probe):
    """Every table but the readings partitions, with its indexes and TOAST, in bytes."""
    rows = probe.rows("SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables WHERE relid NOT IN (SELECT relid FROM pg_partition_tree('readings'))")
    return {name: int(size) for name, size in rows}


def database_url(admin_url, name):
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


# ---------------------------------------------------------------- Kafka


def topic_bytes_on_disk(log_dirs, topic):
    total = 0
    for d in log_dirs:
        for entry in os.listdir(d):
            if entry.rsplit("-", 1)[0] == topic:
                for f in os.listdir(os.path.join(d, entry)):
                    if f.endswith(".log"):
                        total += os.path.getsize(os.path.join(d, entry, f))
    return total


def topic_payload_bytes(brokers, topic):
    """Sum of key and value sizes of every message (the Avro bodies as a device sends them)."""
    try:
        from confluent_kafka import Consumer, TopicPartition
    except ImportError:
        return None, None
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"capacity-size-{os.getpid()}", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = consumer.list_topics(topic, timeout=10)
    ends = {}
    for p in meta.topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    total, messages, deadline = 0, 0, time.monotonic() + 120
    while ends and time.monotonic() < deadline:
        for m in consumer.consume(500, timeout=1.0):
            if m.error():
                continue
            total += len(m.value() or b"") + len(m.key() or b"")
            messages += 1
            if m.offset() + 1 >= ends.get(m.partition(), 0):
                ends.pop(m.partition(), None)
    consumer.close()
    return total, messages


# ---------------------------------------------------------------- one round


def manifold_env(base, db_url, prefix, partitions):
    env = dict(base)
    env.update({
        "DATABASE_URL": db_url,
        "ENV": "test",
        "MANIFOLD__TOPICS__PARTITIONS": str(partitions),
        "MANIFOLD__INGEST__GROUP_ID": f"{prefix}-ingest",
        "MANIFOLD__INGEST__LISTEN": "127.0.0.1:0",
        "MANIFOLD__INFER__GROUP_ID": f"{prefix}-infer",
        "MANIFOLD__INFER__TRANSACTIONAL_ID": f"{prefix}-infer",
        "MANIFOLD__INFER__LISTEN": "127.0.0.1:0",
        "MANIFOLD__RELAY__TRANSACTIONAL_ID": f"{prefix}-relay",
        "MANIFOLD__TELEMETRY__LOG_LEVEL": "warn",
    })
    for role in ("BATCHES", "DEAD_LETTERS", "WINDOWS_READY", "SCORES", "RELAY_POSITION", "ALERTS"):
        env[f"MANIFOLD__TOPICS__{role}__NAME"] = f"{prefix}.{role.lower()}"
    return env


def run_manifold(binary, env, *args):
    proc = subprocess.run([binary, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"manifold {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def wait_until(what, predicate, timeout, period=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(period)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_round(ctx, label, rates, partitions, systems, cycles, round_no):
    tag = f"cap_{os.getpid()}_{label}_p{partitions}_r{round_no}"
    prefix = tag.replace("_", "-")
    admin = ctx["admin"]
    admin.rows(f"DROP DATABASE IF EXISTS {tag}")
    admin.rows(f"CREATE DATABASE {tag}")
    db_url = database_url(ctx["admin_url"], tag)
    env = manifold_env(ctx["env"], db_url, prefix, partitions)
    binary = ctx["binary"]
    result = {"label": label, "rates": rates, "partitions": partitions, "round": round_no, "systems": systems, "cycles": cycles, "loadavg_before": open("/proc/loadavg").read().split()[0]}
    probe = None
    try:
        run_manifold(binary, env, "migrate")
        run_manifold(binary, env, "topics", "create")
        probe = Psql(db_url)
        db_empty = int(probe.one("SELECT pg_database_size(current_database())"))
        tables_empty = table_sizes(probe)

        # 1. preload
        sampler = Sampler(ctx["postmaster"], ctx["broker"], tag, probe.pid).start()
        args = ["simulate", "--speed", "max", "--systems", str(systems), "--cycles", str(cycles)]
        if rates == "native":
            args.append("--native-rates")
        sim = subprocess.Popen([binary, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler.watch(sim.pid, "simulate")
        out, err = sim.communicate()
        preload = sampler.stop()
        if sim.returncode != 0:
            raise RuntimeError(f"simulate failed: {err.strip()[-2000:]}")
        readings = systems * cycles * PER_CYCLE[rates]
        result["readings"] = readings
        result["preload"] = preload
        topic = env["MANIFOLD__TOPICS__BATCHES__NAME"]
        result["kafka_disk_bytes"] = topic_bytes_on_disk(ctx["log_dirs"], topic) if ctx["log_dirs"] else None
        result["kafka_payload_bytes"], result["kafka_messages"] = topic_payload_bytes(env["KAFKA_BROKERS"], topic)

        # 2. ingest the backlog
        wal0 = probe.one("SELECT pg_current_wal_lsn()")
        sampler = Sampler(ctx["postmaster"], ctx["broker"], tag, probe.pid).start()
        ingest = subprocess.Popen([binary, "ingest"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sampler.watch(ingest.pid, "manifold")
        spawned = time.monotonic()
        first = None
        deadline = spawned + 1800
        while True:
            stored = int(probe.one("SELECT coalesce(sum(readings), 0)::int8 FROM ingested_batches"))
            now = time.monotonic()
            if stored > 0 and first is None:
                first = (now, stored, sampler.snapshot())
            if stored >= readings:
                done, done_cpu = now, sampler.snapshot()
                break
            if ingest.poll() is not None:
                raise RuntimeError(f"ingest exited: {ingest.stderr.read()[-2000:]}")
            if now > deadline:
                raise RuntimeError("ingest did not finish")
            time.sleep(0.05)
        stored_cpu = cpu_seconds(ingest.pid)
        # The relay publishes the window-ready events the chunks wrote; that is ingest's work too.
        wait_until("the relay", lambda: probe.one("SELECT count(*) FROM outbox WHERE published_at IS NULL") == "0", 300)
        ingest_phase = sampler.stop()
        wal1 = probe.one("SELECT pg_current_wal_lsn()")
        stop(ingest)
        t0, n0, cpu0 = first
        result["ingest"] = ingest_phase
        result["ingest_steady"] = {"readings": readings - n0, **{k: done_cpu.get(k, 0) - cpu0.get(k, 0) for k in done_cpu}}
        result["ingest_rate"] = (readings - n0) / (done - t0) if n0 < readings else readings / (done - spawned)
        result["ingest_cpu_at_stored"] = stored_cpu
        result["wal_bytes"] = int(probe.one(f"SELECT pg_wal_lsn_diff('{wal1}', '{wal0}')::int8"))
        heap, index = probe.rows("SELECT coalesce(sum(pg_table_size(relid)), 0)::int8, coalesce(sum(pg_indexes_size(relid)), 0)::int8 FROM pg_partition_tree('readings') WHERE isleaf")[0]
        result["readings_heap_bytes"], result["readings_index_bytes"] = int(heap), int(index)
        result["readings_1m_bytes"] = int(probe.one("SELECT pg_total_relation_size('readings_1m')"))
        result["db_growth_bytes"] = int(probe.one("SELECT pg_database_size(current_database())")) - db_empty
        result["table_growth_bytes"] = {k: v - tables_empty.get(k, 0) for k, v in table_sizes(probe).items() if v != tables_empty.get(k, 0)}
        result["batches"] = int(probe.one("SELECT count(*) FROM ingested_batches"))
        windows = int(probe.one("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'"))
        result["windows"] = windows

        # 3. score the announced windows
        if ctx["infer"] and windows > 0:
            size0 = int(probe.one("SELECT pg_total_relation_size('anomaly_scores')"))
            sampler = Sampler(ctx["postmaster"], ctx["broker"], tag, probe.pid).start()
            infer = subprocess.Popen([binary, "infer"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            sampler.watch(infer.pid, "manifold")
            spawned = time.monotonic()
            first = None
            while True:
                scored = int(probe.one("SELECT count(*) FROM (SELECT DISTINCT system_id, window_start, revision FROM anomaly_scores) s"))
                now = time.monotonic()
                if scored > 0 and first is None:
                    first = (now, scored, sampler.snapshot())
                if scored >= windows:
                    done, done_cpu = now, sampler.snapshot()
                    break
                if infer.poll() is not None:
                    raise RuntimeError(f"infer exited: {infer.stderr.read()[-2000:]}")
                if now - spawned > 1800:
                    raise RuntimeError("infer did not finish")
                time.sleep(0.1)
            result["infer"] = sampler.stop()
            stop(infer)
            t0, n0, cpu0 = first
            result["infer_steady"] = {"windows": windows - n0, **{k: done_cpu.get(k, 0) - cpu0.get(k, 0) for k in done_cpu}}
            result["infer_rate"] = (windows - n0) / (done - t0) if n0 < windows else windows / (done - spawned)
            result["scores_bytes"] = int(probe.one("SELECT pg_total_relation_size('anomaly_scores')")) - size0
            result["models"] = probe.rows("SELECT model_version, count(DISTINCT (system_id, window_start)) FROM anomaly_scores GROUP BY 1")
    finally:
        if probe:
            probe.close()
        if not ctx["keep"]:
            admin.rows(f"DROP DATABASE IF EXISTS {tag} WITH (FORCE)")
            subprocess.run([sys.executable, "-c", DELETE_TOPICS, env["KAFKA_BROKERS"], prefix], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result


DELETE_TOPICS = """
import sys
try:
    from confluent_kafka.admin import AdminClient
except ImportError:
    sys.exit(0)
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(sys.argv[2] + ".")]
if names:
    for f in admin.delete_topics(names).values():
        f.result()
"""


# ---------------------------------------------------------------- report


def per_million(seconds, readings):
    return seconds / readings * 1e6


def figures(r):
    """The per-round figures the summary and the CSV show."""
    n = r["readings"]
    ing = r["ingest"]
    f = {
        "config": f"{r['rates']} P={r['partitions']}",
        "round": r["round"],
        "readings": n,
        "ingest_readings_per_s": r["ingest_rate"],
        "manifold_cpu_s_per_M": per_million(ing.get("manifold", 0), n),
        "manifold_steady_cpu_s_per_M": per_million(r["ingest_steady"].get("manifold", 0), r["ingest_steady"]["readings"]),
        "pg_db_steady_cpu_s_per_M": per_million(r["ingest_steady"].get("pg_db", 0), r["ingest_steady"]["readings"]),
        "pg_db_cpu_s_per_M": per_million(ing.get("pg_db", 0), n),
        "pg_shared_cpu_s_per_M": per_million(ing.get("pg_shared", 0), n),
        "kafka_fetch_cpu_s_per_M": per_million(ing.get("kafka", 0), n),
        "kafka_produce_cpu_s_per_M": per_million(r["preload"].get("kafka", 0), n),
        "simulate_cpu_s_per_M": per_million(r["preload"].get("simulate", 0), n),
        "ingest_wall_s": ing["wall_s"],
        "ingest_box_busy_cores": ing["box_busy_s"] / ing["wall_s"],
        "ingest_other_cores": ing["other_s"] / ing["wall_s"],
        "pg_bytes_per_reading": (r["readings_heap_bytes"] + r["readings_index_bytes"]) / n,
        "pg_heap_bytes_per_reading": r["readings_heap_bytes"] / n,
        "pg_index_bytes_per_reading": r["readings_index_bytes"] / n,
        "pg_1m_bytes_per_reading": r["readings_1m_bytes"] / n,
        "db_growth_bytes_per_reading": r["db_growth_bytes"] / n,
        "wal_bytes_per_reading": r["wal_bytes"] / n,
        "kafka_disk_bytes_per_reading": (r["kafka_disk_bytes"] or 0) / n,
        "avro_bytes_per_reading": (r["kafka_payload_bytes"] or 0) / n,
        "avro_bytes_per_message": (r["kafka_payload_bytes"] or 0) / max(1, r["kafka_messages"] or 0),
        "windows": r["windows"],
        "batch_ids_bytes_per_batch": r["table_growth_bytes"].get("ingested_batches", 0) / max(1, r["batches"]),
        "windows_table_bytes_per_window": r["table_growth_bytes"].get("windows", 0) / max(1, r["windows"]),
        "outbox_bytes_per_window": r["table_growth_bytes"].get("outbox", 0) / max(1, r["windows"]),
    }
    if "infer" in r:
        inf, w = r["infer"], r["windows"]
        f.update({
            "infer_windows_per_s": r["infer_rate"],
            "infer_cpu_s_per_1k_windows": inf.get("manifold", 0) / w * 1000,
            "infer_steady_cpu_s_per_1k_windows": r["infer_steady"].get("manifold", 0) / max(1, r["infer_steady"]["windows"]) * 1000,
            "infer_pg_steady_cpu_s_per_1k_windows": r["infer_steady"].get("pg_db", 0) / max(1, r["infer_steady"]["windows"]) * 1000,
            "infer_pg_cpu_s_per_1k_windows": inf.get("pg_db", 0) / w * 1000,
            "infer_kafka_cpu_s_per_1k_windows": inf.get("kafka", 0) / w * 1000,
            "infer_box_busy_cores": inf["box_busy_s"] / inf["wall_s"],
            "scores_bytes_per_window": r["scores_bytes"] / w,
        })
    return f


def summarize(rows):
    """Median and min-max per configuration and figure."""
    by_config = {}
    for f in rows:
        by_config.setdefault(f["config"], []).append(f)
    lines = []
    keys = [k for k in rows[0] if k not in ("config", "round")]
    for config, fs in by_config.items():
        lines.append(f"## {config} ({len(fs)} rounds)")
        for k in keys:
            values = [f[k] for f in fs if k in f]
            if not values:
                continue
            lines.append(f"  {k:34} median {statistics.median(values):>14.4g}   min {min(values):>12.4g}   max {max(values):>12.4g}")
    return "\n".join(lines)


def main():
    admin_url = os.environ.get("DATABASE_URL")
    brokers = os.environ.get("KAFKA_BROKERS")
    if not admin_url or not brokers or not os.environ.get("SCHEMA_REGISTRY_URL"):
        sys.exit('run eval "$(scripts/stack env)" first')
    binary = os.path.abspath(os.environ.get("MANIFOLD_BIN", os.path.join(REPO, "target/release/manifold")))
    postmaster = listener_pid(urllib.parse.urlsplit(admin_url).port or 5432)
    broker = listener_pid(int(brokers.split(",")[0].rsplit(":", 1)[1]))
    if postmaster is None:
        sys.exit("no process listens on DATABASE_URL's port on this machine")
    ctx = {
        "admin_url": admin_url,
        "admin": Psql(admin_url),
        "env": dict(os.environ),
        "binary": binary,
        "postmaster": postmaster,
        "broker": broker,
        "log_dirs": kafka_log_dirs(broker) if broker else [],
        "infer": os.environ.get("INFER", "1") != "0",
        "keep": os.environ.get("KEEP") == "1",
    }
    out_dir = os.environ.get("OUT", "/tmp/capacity")
    os.makedirs(out_dir, exist_ok=True)
    rounds = env_int("ROUNDS", 2)
    partitions = [int(p) for p in os.environ.get("PARTITIONS", "1,3,6,12").split(",")]
    plans = [("1hz", "1hz", p, env_int("SYSTEMS", 48), env_int("CYCLES", 62)) for p in partitions]
    if os.environ.get("NATIVE", "1") != "0":
        plans.append(("native", "native", env_int("NATIVE_PARTITIONS", 6), env_int("NATIVE_SYSTEMS", 12), env_int("NATIVE_CYCLES", 6)))
    log(f"postmaster {postmaster}, broker {broker}, kafka log dirs {ctx['log_dirs']}, {os.cpu_count()} cores, binary {binary}")
    rows, raw = [], []
    # Rounds outermost, so slow drift of the box's load spreads over every configuration.
    for round_no in range(1, rounds + 1):
        for label, rates, p, systems, cycles in plans:
            log(f"round {round_no}: {rates}, {p} partitions, {systems} systems x {cycles} cycles")
            r = one_round(ctx, label, rates, p, systems, cycles, round_no)
            raw.append(r)
            f = figures(r)
            rows.append(f)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items()))
            with open(os.path.join(out_dir, "raw.json"), "w") as fh:
                json.dump(raw, fh, indent=1)
    with open(os.path.join(out_dir, "rounds.csv"), "w", newline="") as fh:
        keys = list(dict.fromkeys(k for f in rows for k in f))
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    summary = summarize(rows)
    with open(os.path.join(out_dir, "summary.txt"), "w") as fh:
        fh.write(summary + "\n")
    print(summary)
    ctx["admin"].close()


if __name__ == "__main__":
    main()
