"""Plots a sustained run (the CSV files sustained.py wrote into DIR) to DIR/sustained.png."""

import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def column(rows, name, scale=1.0):
    return [float(r[name]) * scale if r.get(name) not in (None, "") else float("nan") for r in rows]


def moving_mean(values, width):
    out = []
    for i in range(len(values)):
        window = [v for v in values[max(0, i - width + 1):i + 1] if v == v]
        out.append(sum(window) / len(window) if window else float("nan"))
    return out


def rolling_quantile(points, q, width=30.0):
    """(t, q-quantile of the values in the last `width` seconds), one point per input point."""
    out, start = [], 0
    for i, (t, _) in enumerate(points):
        while points[start][0] < t - width:
            start += 1
        window = sorted(v for _, v in points[start:i + 1])
        out.append((t, window[min(len(window) - 1, int(q * (len(window) - 1) + 0.5))]))
    return out


def main(directory):
    samples = read(os.path.join(directory, "samples.csv"))
    probes = [(float(r["t"]), float(r["latency_ms"])) for r in read(os.path.join(directory, "probes.csv"))]
    windows = [(float(r["ready_t"]), float(r["latency_ms"])) for r in read(os.path.join(directory, "windows.csv")) if r["latency_ms"]]
    with open(os.path.join(directory, "summary.json")) as f:
        summary = json.load(f)
    t = column(samples, "t")
    fig, axes = plt.subplots(5, 1, figsize=(9, 12), sharex=True)

    ax = axes[0]
    rate = column(samples, "readings_per_s", 1e-3)
    ax.plot(t, rate, lw=0.5, alpha=0.4, label="stored per second (chunks commit in bursts)")
    ax.plot(t, moving_mean(rate, 10), lw=1.2, label="stored, 10 s mean")
    ax.axhline(summary["sustained"]["target_readings_per_s"] / 1e3, color="k", ls="--", lw=0.8, label="target (80 % of max)")
    ax.set_ylabel("k readings/s")
    ax.legend(loc="lower right", fontsize=7)

    ax = axes[1]
    ax.plot(t, column(samples, "ingest_lag_messages"), lw=0.8, label="ingest lag (batches of 1,020)")
    ax.plot(t, column(samples, "infer_lag_messages"), lw=0.8, label="infer lag (window-ready events)")
    ax.set_ylabel("messages behind")
    ax.legend(loc="upper right", fontsize=7)

    ax = axes[2]
    if probes:
        ax.scatter([p[0] for p in probes], [p[1] for p in probes], s=2, alpha=0.4, label="probe: produce → row visible")
        for q, style in ((0.5, "-"), (0.99, "--")):
            rq = rolling_quantile(probes, q)
            ax.plot([p[0] for p in rq], [p[1] for p in rq], ls=style, lw=1, label=f"probe p{int(q * 100)} (30 s)")
    if windows:
        rq = rolling_quantile(windows, 0.95)
        ax.plot([p[0] for p in rq], [p[1] for p in rq], lw=1, label="window-ready → score p95 (30 s)")
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.legend(loc="upper right", fontsize=7)

    ax = axes[3]
    for name in ("manifold", "postgres", "kafka", "simulate"):
        ax.plot(t, column(samples, f"{name}_cpu"), lw=0.8, label=name + (" (our backends)" if name == "postgres" else ""))
    ax.set_ylabel("CPU (cores)")
    ax.legend(loc="upper left", fontsize=7, ncol=4)
    load = ax.twinx()
    load.plot(t, column(samples, "loadavg1"), color="grey", ls=":", lw=0.8)
    load.set_ylabel("load average, 1 min (dotted)", fontsize=8)

    ax = axes[4]
    ax.plot(t, column(samples, "manifold_rss_mb"), lw=0.8, label="manifold run")
    ax.plot(t, column(samples, "simulate_rss_mb"), lw=0.8, label="manifold simulate")
    ax.set_ylabel("RSS (MB)")
    ax.set_xlabel("seconds since the paced producer started")
    ax.legend(loc="lower right", fontsize=7)

    s = summary["sustained"]
    fig.suptitle(f"manifold run, {s['target_readings_per_s']:,.0f} readings/s target for {summary['duration_s']:.0f} s "
                 f"({summary['cores']} cores, shared)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "sustained.png"), dpi=72)


if __name__ == "__main__":
    main(sys.argv[1])
