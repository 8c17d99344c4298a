#!/usr/bin/env python3
"""Builds data/uci-sample/ from a full copy of the UCI hydraulic data set (same layout).

One cycle per distinct (cooler, valve, pump, accumulator) condition, preferring a cycle whose
stable flag is 0, with values rounded to 3 decimals so the sample stays well under 2 MB.
Usage: scripts/make-uci-sample.py ../shared/data/uci-hydraulic data/uci-sample
"""
import os
import sys

SENSORS = ["PS1_1hz", "PS2_1hz", "PS3_1hz", "PS4_1hz", "PS5_1hz", "PS6_1hz", "EPS1_1hz", "FS1_1hz",
           "FS2_1hz", "TS1", "TS2", "TS3", "TS4", "VS1", "CE", "CP", "SE"]


def main(src, dst):
    profile = [line.rstrip("\n") for line in open(os.path.join(src, "profile.txt"))]
    cycles_path = os.path.join(src, "cycles.txt")
    cycles = [line.strip() for line in open(cycles_path)] if os.path.exists(cycles_path) else [str(i) for i in range(len(profile))]
    chosen = {}
    for row, line in enumerate(profile):
        fields = line.split("\t")
        combo, stable = tuple(fields[:4]), fields[4]
        if combo not in chosen or (stable == "0" and profile[chosen[combo]].split("\t")[4] != "0"):
            chosen[combo] = row
    rows = sorted(chosen.values())
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "profile.txt"), "w") as out:
        out.writelines(profile[r] + "\n" for r in rows)
    with open(os.path.join(dst, "cycles.txt"), "w") as out:
        out.writelines(cycles[r] + "\n" for r in rows)
    for sensor in SENSORS:
        lines = open(os.path.join(src, sensor + ".txt")).read().splitlines()
        with open(os.path.join(dst, sensor + ".txt"), "w") as out:
            for r in rows:
                values = ("%.3f" % float(v) for v in lines[r].split("\t"))
                out.write("\t".join(v.rstrip("0").rstrip(".") if "." in v else v for v in values) + "\n")
    print(f"{len(rows)} cycles written to {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
