"""Check that TensorBoard's own reader parses llite-tui's event files, with the same values.

Usage: python tensorboard_check.py RUN_DIR

Not used by tests. Needs: tensorboard (no TensorFlow):
  python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install tensorboard

RUN_DIR is a run trained with `[log] tensorboard = true` (e.g. `--set log.tensorboard=true`).
Loads it with tensorboard.backend.event_processing.event_accumulator.EventAccumulator (which
verifies every record's masked CRC-32C) and compares each scalar series with metrics.jsonl:
train/loss, train/lr, train/grad_norm, train/tokens_per_s, train/step_ms, train/tokens (step
events) and val/loss (eval events), value by value at float32 precision. Prints one line per
tag and exits 1 on any mismatch.
"""

import json
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator

STEP_FIELDS = {
    "train/loss": "loss",
    "train/lr": "lr",
    "train/grad_norm": "grad_norm",
    "train/tokens_per_s": "tokens_per_s",
    "train/step_ms": "step_ms",
    "train/tokens": "tokens",
}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def expected(run_dir):
    want = {tag: {} for tag in list(STEP_FIELDS) + ["val/loss"]}
    with open(f"{run_dir}/metrics.jsonl") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "step":
                for tag, field in STEP_FIELDS.items():
                    want[tag][ev["step"]] = f32(ev[field])
            elif ev.get("event") == "eval":
                want["val/loss"][ev["step"]] = f32(ev["val_loss"])
    return want


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run_dir = sys.argv[1]
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    ok = True
    for tag, series in expected(run_dir).items():
        if not series:
            continue
        if tag not in tags:
            print(f"MISSING {tag} (TensorBoard sees {sorted(tags)})")
            ok = False
            continue
        got = {e.step: e.value for e in acc.Scalars(tag)}
        bad = [s for s in series if got.get(s) != series[s]]
        extra = sorted(set(got) - set(series))
        status = "MATCH" if not bad and not extra else "MISMATCH"
        ok &= status == "MATCH"
        print(f"{status} {tag}: {len(got)} points read, {len(series)} in metrics.jsonl"
              + (f"; differing steps {bad[:5]}" if bad else "")
              + (f"; extra steps {extra[:5]}" if extra else ""))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
