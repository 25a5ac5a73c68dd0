"""Write a larger "Which work of Shakespeare contains this line?" training set from the corpus.

Usage: python3 data/make_which_work.py [--out data/which-work-train.jsonl] [--per-play N]

Why: the bundled `sft-shakespeare.jsonl` has ~8,900 training questions of this task, and a
bag-of-words classifier trained on them reaches only ~9% on the held-out ones
(`benches/analysis/which_work_ceiling.py`): the labels, not the model, are the limit. The corpus
itself says which play every line belongs to. This script labels corpus lines with their play's
title (the 37 titles of the task) in the same Alpaca form, and **leaves out every line of the
held-out questions** of `sft-shakespeare.jsonl` (llite-tui's split: example index % 50 == 49),
so `llite-tui eval --task data/sft-shakespeare.jsonl --held-out 0.02` still scores questions the
model was never trained on. Stdlib only; deterministic.
"""

import argparse
import json
import random
import re

INSTRUCTION = "Which work of Shakespeare contains this line?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="data/shakespeare.txt")
    ap.add_argument("--sft", default="data/sft-shakespeare.jsonl")
    ap.add_argument("--out", default="data/which-work-train.jsonl")
    ap.add_argument("--per-play", type=int, default=0, help="at most N lines per play (0: all)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    rows = [json.loads(l) for l in open(a.sft, encoding="utf-8")]
    which = [r for r in rows if r["instruction"] == INSTRUCTION]
    titles = sorted({r["output"] for r in which})
    held_out = {
        r["input"].strip()
        for i, r in enumerate(rows)
        if i % 50 == 49 and r["instruction"] == INSTRUCTION
    }

    by_upper = {t.upper(): t for t in titles}
    corpus = [l.strip() for l in open(a.corpus, encoding="utf-8")]
    # Each work starts with its title line, a blank line and "by William Shakespeare".
    starts = [i for i in range(len(corpus) - 2) if corpus[i + 2] == "by William Shakespeare"]
    lines = {t: [] for t in titles}
    for begin, end in zip(starts, starts[1:] + [len(corpus)]):
        title = by_upper.get(corpus[begin])
        if title is None:
            continue  # poems and sonnets are not part of the task
        for s in corpus[begin + 3 : end]:
            if s.startswith("[") or len(s.split()) < 4 or s in held_out:
                continue
            if re.match(r"^(ACT|SCENE|Dramatis Personae)\b", s, re.IGNORECASE):
                continue
            lines[title].append(s)

    rng = random.Random(a.seed)
    out = []
    for t in titles:
        pool = sorted(set(lines[t]))
        rng.shuffle(pool)
        if a.per_play > 0:
            pool = pool[: a.per_play]
        out += [{"instruction": INSTRUCTION, "input": s, "output": t} for s in pool]
    rng.shuffle(out)
    with open(a.out, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(
        f"wrote {a.out}: {len(out)} questions over {len(titles)} titles "
        f"({len(held_out)} held-out lines of {a.sft} excluded)"
    )


if __name__ == "__main__":
    main()
