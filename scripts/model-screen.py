#!/usr/bin/env python3
"""A ceiling check for the accumulator on blocks never seen, outside manifold's model.

Gradient-boosted trees (scikit-learn) on every 1 s value of every sensor of a cycle (17 x 60 =
1,020 inputs, no feature engineering), on the same whole-block split as `manifold model eval
--cross-validate` (src/train/split.rs: about 1 row in 7, in whole blocks, is the untouched split;
the other blocks fill 5 folds in time order, each to the fold with the fewest rows). If a model
family this different lands where the GNN does, the limit is the data's, not the network's.

It prints the accumulator's accuracy per fold and on the untouched split for:
  raw         the 1,020 values;
  efficiency  the same plus, per second, PS1 x FS1 / EPS1 (hydraulic over motor power);
and, for `raw`, the blocks it gets wrong, and what a causal majority vote over the last N windows
of the same block (what a consumer smoothing scores over time could do) adds.

Needs numpy and scikit-learn (`pip install numpy scikit-learn`); about 5 minutes on one core.
Usage: scripts/model-screen.py ../shared/data/uci-hydraulic
"""
import os
import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

SENSORS = ["PS1", "PS2", "PS3", "PS4", "PS5", "PS6", "EPS1", "FS1", "FS2", "TS1", "TS2", "TS3", "TS4",
           "VS1", "CE", "CP", "SE"]
TEST_EVERY = 7
FOLDS = 5


def load(data):
    def one(name):
        path = os.path.join(data, name + "_1hz.txt")
        return np.loadtxt(path if os.path.exists(path) else os.path.join(data, name + ".txt"))
    return np.stack([one(s) for s in SENSORS], 1), np.loadtxt(os.path.join(data, "profile.txt"))


def blocks(profile):
    """Consecutive rows with identical (cooler, valve, pump, accumulator) labels are one block."""
    out = [0]
    for i in range(1, len(profile)):
        out.append(out[-1] + int(not (profile[i, :4] == profile[i - 1, :4]).all()))
    return np.array(out)


def parts(block):
    """-1 for the untouched split, else the fold: the rule of src/train/split.rs, block by block."""
    size = np.bincount(block)
    part, seen, test_rows, fold_rows = [], 0, 0, [0] * FOLDS
    for b in range(len(size)):
        seen += size[b]
        target = seen / TEST_EVERY
        if abs(test_rows + size[b] - target) < abs(test_rows - target):
            test_rows += size[b]
            part.append(-1)
        else:
            fold = int(np.argmin(fold_rows))
            fold_rows[fold] += size[b]
            part.append(fold)
    return np.array(part)[block]


def predict(inputs, label, part, held):
    model = HistGradientBoostingClassifier(max_iter=200, random_state=0)
    train = (part != held) & (part != -1) if held >= 0 else part != -1
    model.fit(inputs[train], label[train])
    return model.predict(inputs[part == held])


def vote(pred, block, window):
    out = pred.copy()
    for i in range(len(pred)):
        j = max(0, i - window + 1)
        while block[j] != block[i]:
            j += 1
        values, counts = np.unique(pred[j:i + 1], return_counts=True)
        out[i] = values[counts.argmax()]
    return out


def main(data):
    values, profile = load(data)
    n = len(values)
    block = blocks(profile)
    part = parts(block)
    label = profile[:, 3]
    print(f"{n} cycles, {block.max() + 1} blocks; untouched {int((part == -1).sum())} rows, folds "
          f"{[int((part == k).sum()) for k in range(FOLDS)]}")
    ix = {s: i for i, s in enumerate(SENSORS)}
    efficiency = values[:, ix["PS1"]] * values[:, ix["FS1"]] / (values[:, ix["EPS1"]] + 1.0)
    inputs = {
        "raw": values.reshape(n, -1),
        "efficiency": np.concatenate([values.reshape(n, -1), efficiency], 1),
    }
    for name, x in inputs.items():
        pred = np.full(n, np.nan)
        for held in list(range(FOLDS)) + [-1]:
            pred[part == held] = predict(x, label, part, held)
        folds = [100 * (pred[part == k] == label[part == k]).mean() for k in range(FOLDS)]
        untouched = 100 * (pred[part == -1] == label[part == -1]).mean()
        print(f"{name:>10}: folds {' '.join(f'{a:.1f}' for a in folds)} -> {np.mean(folds):.1f} ± "
              f"{np.std(folds, ddof=1):.1f} %; untouched {untouched:.1f} %", flush=True)
        if name != "raw":
            continue
        for b in np.unique(block):
            rows = block == b
            right = (pred[rows] == label[rows]).mean()
            if right < 1:
                got = dict(zip(*np.unique(pred[rows], return_counts=True)))
                print(f"    block {b:3} ({'untouched' if part[rows][0] < 0 else 'fold'}, {int(rows.sum())} cycles, "
                      f"{label[rows][0]:.0f} bar): {100 * right:.0f} % right, read as "
                      f"{ {f'{k:.0f}': int(v) for k, v in got.items()} }")
        for window in (3, 5, 10):
            smoothed = vote(pred, block, window)
            print(f"    vote over the last {window:2} windows: folds "
                  f"{100 * (smoothed[part >= 0] == label[part >= 0]).mean():.1f} %, untouched "
                  f"{100 * (smoothed[part == -1] == label[part == -1]).mean():.1f} %")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/uci-hydraulic")
