"""How much of the bundled "Which work of Shakespeare contains this line?" task can be learned,
and from what. Reproduces the figures in the SFT notes; no dependencies beyond Python 3.

Usage: python3 benches/analysis/which_work_ceiling.py [data/sft-shakespeare.jsonl data/shakespeare.txt]

Held-out questions are llite-tui's split of the full file (`data.val_fraction = 0.02`: every
50th example, index % 50 == 49), restricted to the which-work task. Three references:
  - chance (1/37) and the majority class of the training questions;
  - a bag-of-words naive Bayes trained on the *training which-work questions only*: what the
    SFT data itself teaches about line -> title;
  - the same classifier trained on the *corpus split by play*, minus the held-out lines: what
    is knowable from the pretraining text, if a model could tie a play's vocabulary to its title
    (the labels `data/make_which_work.py` gives a fine-tune).
It also counts held-out lines that occur verbatim in training "Continue this speech from TITLE"
examples (title -> line, the reverse direction of the question).
"""

import collections
import json
import math
import re
import sys


def words(s):
    return re.findall(r"[a-z']+", s.lower())


def naive_bayes(docs_by_class, prior=None, alpha=0.1):
    counts = {k: collections.Counter(w for d in docs for w in words(d)) for k, docs in docs_by_class.items()}
    vocab = len({w for c in counts.values() for w in c})
    totals = {k: sum(c.values()) for k, c in counts.items()}

    def predict(text):
        def score(k):
            base = math.log(prior[k]) if prior else 0.0
            return base + sum(math.log((counts[k][w] + alpha) / (totals[k] + alpha * vocab)) for w in words(text))

        return max(counts, key=score)

    return predict


def main():
    sft = sys.argv[1] if len(sys.argv) > 1 else "data/sft-shakespeare.jsonl"
    corpus = sys.argv[2] if len(sys.argv) > 2 else "data/shakespeare.txt"
    rows = [json.loads(l) for l in open(sft, encoding="utf-8")]
    is_ww = lambda r: r["instruction"].startswith("Which work")
    held = [r for i, r in enumerate(rows) if i % 50 == 49 and is_ww(r)]
    train = [r for i, r in enumerate(rows) if i % 50 != 49 and is_ww(r)]
    titles = sorted({r["output"] for r in rows if is_ww(r)})
    prior = collections.Counter(r["output"] for r in train)
    majority = prior.most_common(1)[0][1] / len(train)
    acc = lambda predict: sum(predict(r["input"]) == r["output"] for r in held) / len(held)

    by_title = collections.defaultdict(list)
    for r in train:
        by_title[r["output"]].append(r["input"])
    nb_sft = acc(naive_bayes(by_title, prior))

    # The corpus split by play (each work opens with its title and "by William Shakespeare"),
    # without the held-out lines themselves.
    upper = {t.upper(): t for t in titles}
    held_lines = {r["input"].strip() for r in held}
    text = [l.strip() for l in open(corpus, encoding="utf-8")]
    starts = [i for i in range(len(text) - 2) if text[i + 2] == "by William Shakespeare"]
    plays = collections.defaultdict(list)
    for begin, end in zip(starts, starts[1:] + [len(text)]):
        if text[begin] in upper:
            plays[upper[text[begin]]] += [s for s in text[begin + 3 : end] if s not in held_lines]
    nb_corpus = acc(naive_bayes(plays, alpha=0.01))

    seen = set()
    for i, r in enumerate(rows):
        if i % 50 != 49 and r["instruction"].startswith("Continue"):
            seen.update(l.strip() for l in (r["input"] + "\n" + r["output"]).split("\n"))
    in_continue = sum(r["input"].strip() in seen for r in held)

    print(f"held-out which-work questions: {len(held)} ({len(titles)} titles)")
    print(f"chance                                    {1 / len(titles):6.1%}")
    print(f"majority class                            {majority:6.1%}")
    print(f"naive Bayes, SFT questions only           {nb_sft:6.1%}")
    print(f"naive Bayes, corpus minus held-out lines  {nb_corpus:6.1%}")
    print(f"held-out lines inside training 'Continue this speech from TITLE' examples: {in_continue}/{len(held)}")


if __name__ == "__main__":
    main()
