"""transformers `generate` reference for `llite-tui bench`: greedy sampling speed on the same weights.

Usage: python generate.py --model HF_DIR --prompt-len 64 --new 256 [--threads N] [--repeats 3]
Prints one JSON object on stdout: {"tokens_per_s": best of --repeats, "first_token_s": best time
to the first new token (a `generate` of one token, after loading), "ids": [...new ids...]}.

HF_DIR is the Hugging Face LlamaForCausalLM directory (config.json + model.safetensors) that
`llite-tui bench` writes from its own benchmark model, so both sides run identical weights in
float32. The prompt is the bench's synthetic one (token i is i*7 mod vocab); generation is greedy
with the KV cache (transformers' default), never stopping early (no EOS), timed from the prompt
to the last new token, exactly as llite-tui times itself. Needs `torch` and `transformers`;
never used by the tests.
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    prompt = torch.tensor([[i * 7 % vocab for i in range(a.prompt_len)]], dtype=torch.long)
    kwargs = dict(
        max_new_tokens=a.new,
        min_new_tokens=a.new,
        do_sample=False,
        use_cache=True,
        eos_token_id=None,
        pad_token_id=0,
    )
    best = 0.0
    first = float("inf")
    ids = []
    with torch.inference_mode():
        one = dict(kwargs, max_new_tokens=1, min_new_tokens=1)
        for _ in range(max(1, a.repeats)):
            start = time.perf_counter()
            model.generate(prompt, attention_mask=torch.ones_like(prompt), **one)
            first = min(first, time.perf_counter() - start)
        for _ in range(max(1, a.repeats)):
            start = time.perf_counter()
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), **kwargs)
            elapsed = time.perf_counter() - start
            ids = out[0, a.prompt_len :].tolist()
            best = max(best, len(ids) / elapsed)
    print(
        json.dumps(
            {
                "impl": "transformers-generate",
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "threads": torch.get_num_threads(),
                "tokens_per_s": best,
                "first_token_s": first,
                "ids": ids,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
