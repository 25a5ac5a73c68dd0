"""Check llite-tui's chat-template rendering against transformers' apply_chat_template.

Usage: python chat_template_check.py --llite target/release/llite-tui --model EXPORT_DIR [--model ...]

Not used by tests. Needs: transformers jinja2 tokenizers (no torch):
  python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install transformers jinja2 tokenizers

For each exported model directory (`llite-tui export`) and a few conversations (one turn with
the generation prompt, three turns with and without a system prompt), it compares
  - transformers: AutoTokenizer.from_pretrained(dir).apply_chat_template(msgs, tokenize=True)
  - llite-tui:    `llite-tui template --model dir --messages msgs.json` (ids of the whole text,
                  and the SFT tokenization, rendered turn by turn, when there is a reply)
and prints MATCH or MISMATCH with both id lists. Exit code 1 on any mismatch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from transformers import AutoTokenizer

THREE = [
    {"role": "user", "content": "Which work contains this line?\nTo be, or not to be"},
    {"role": "assistant", "content": "Hamlet"},
    {"role": "user", "content": "And this one?\nOut, damned spot!"},
    {"role": "assistant", "content": "Macbeth"},
    {"role": "user", "content": "And this?  Now is the winter of our discontent"},
    {"role": "assistant", "content": "Richard III"},
]
CONVERSATIONS = [
    ("one turn + generation prompt", [{"role": "user", "content": "Who wrote Hamlet?"}], True),
    ("three turns", THREE, False),
    ("system + three turns", [{"role": "system", "content": "Answer with a play."}] + THREE, False),
]


def hf_ids(tok, msgs, gen):
    out = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding by default
        out = out["input_ids"]
    return list(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llite", required=True)
    ap.add_argument("--model", action="append", required=True)
    args = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory() as work:
        for model in args.model:
            tok = AutoTokenizer.from_pretrained(model)
            for name, msgs, gen in CONVERSATIONS:
                path = os.path.join(work, "msgs.json")
                with open(path, "w") as f:
                    json.dump(msgs, f)
                cmd = [args.llite, "template", "--model", model, "--messages", path]
                if gen:
                    cmd.append("--generation-prompt")
                llite = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                ref = hf_ids(tok, msgs, gen)
                text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
                ok = ref == llite["ids"] and text == llite["text"]
                sft = llite.get("sft_ids")
                sft_note = "" if sft is None else (", SFT ids equal" if sft == ref else ", SFT ids DIFFER")
                ok = ok and (sft is None or sft == ref)
                bad += not ok
                print(f"{'MATCH' if ok else 'MISMATCH'} {model} [{llite['template']}] {name}: "
                      f"{len(ref)} ids{sft_note}")
                if not ok:
                    print(f"  transformers: {ref}\n  llite-tui:    {llite['ids']}\n  sft:          {sft}")
                    print(f"  text transformers: {text!r}\n  text llite-tui:    {llite['text']!r}")
                else:
                    print(f"  ids: {ref[:24]}{' ...' if len(ref) > 24 else ''}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
