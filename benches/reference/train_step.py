"""PyTorch reference for `llite-tui bench`: the same LLaMa and the same training step, eager or
with `--compile` (torch.compile, inductor, of the model; the optimizer step stays eager).

Usage: python train_step.py --vocab 4096 --d-model 256 --layers 4 --heads 4 --kv-heads 2 \
           --ff 704 --batch 8 --seq 256 --steps 5 [--threads N] [--untied] [--compile]
Prints one JSON object on stdout: {"ms_per_step": median, "tokens_per_s": ..., ...}.

The model mirrors src/model/llama.rs: RMSNorm (eps 1e-5), rotate_half RoPE (theta 10000),
grouped-query causal attention (F.scaled_dot_product_attention, PyTorch's default eager path),
SwiGLU MLP, no biases, tied embeddings. The step is forward + cross-entropy + backward +
global-norm clipping at 1.0 + AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices
only, lr 1e-4), timed from the batch to the updated weights; one warm-up step, then the
median of --steps steps. Random tokens, as in the Rust bench. Needs only `torch`
(`pip install torch`); never used by the tests.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=704)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    a = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    head_dim = a.d_model // a.heads
    rep = a.heads // a.kv_heads

    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            inv = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + a.norm_eps)
            return x * inv * self.weight

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d, kv = a.d_model, head_dim * a.kv_heads
            self.input_layernorm = RMSNorm(d)
            self.q_proj = nn.Linear(d, d, bias=False)
            self.k_proj = nn.Linear(d, kv, bias=False)
            self.v_proj = nn.Linear(d, kv, bias=False)
            self.o_proj = nn.Linear(d, d, bias=False)
            self.post_attention_layernorm = RMSNorm(d)
            self.gate_proj = nn.Linear(d, a.ff, bias=False)
            self.up_proj = nn.Linear(d, a.ff, bias=False)
            self.down_proj = nn.Linear(a.ff, d, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(b, t, a.heads, head_dim).transpose(1, 2)
            k = self.k_proj(h).view(b, t, a.kv_heads, head_dim).transpose(1, 2)
            v = self.v_proj(h).view(b, t, a.kv_heads, head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if rep > 1:  # HF's repeat_kv
                k = k[:, :, None].expand(b, a.kv_heads, rep, t, head_dim).reshape(b, a.heads, t, head_dim)
                v = v[:, :, None].expand(b, a.kv_heads, rep, t, head_dim).reshape(b, a.heads, t, head_dim)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o_proj(o.transpose(1, 2).reshape(b, t, a.d_model))
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(a.vocab, a.d_model)
            self.layers = nn.ModuleList(Block() for _ in range(a.layers))
            self.norm = RMSNorm(a.d_model)
            self.lm_head = nn.Linear(a.d_model, a.vocab, bias=False) if a.untied else None
            resid = 0.02 / math.sqrt(2 * a.layers)
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    std = resid if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                    nn.init.normal_(p, 0.0, std)
            inv = 1.0 / (a.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
            ang = torch.arange(a.seq, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat((ang, ang), dim=-1)
            self.register_buffer("cos", ang.cos().float()[None, None], persistent=False)
            self.register_buffer("sin", ang.sin().float()[None, None], persistent=False)

        def forward(self, tokens):
            x = self.embed_tokens(tokens)
            for layer in self.layers:
                x = layer(x, self.cos, self.sin)
            h = self.norm(x)
            w = self.lm_head.weight if self.lm_head is not None else self.embed_tokens.weight
            return h @ w.t()

    model = Llama()
    forward = torch.compile(model) if a.compile else model
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    gen = torch.Generator().manual_seed(0)

    def step():
        rows = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen)
        start = time.perf_counter()
        logits = forward(rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), rows[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return (time.perf_counter() - start) * 1000.0, loss.item()

    step()  # warm-up (with --compile: the compilation; a second for any recompile)
    if a.compile:
        step()
    times = []
    t_cpu0 = time.process_time()
    t_wall0 = time.perf_counter()
    for _ in range(max(1, a.steps)):
        ms, loss = step()
        times.append(ms)
    cpu_util = (time.process_time() - t_cpu0) / max(1e-9, time.perf_counter() - t_wall0)
    ms = statistics.median(times)
    peak_kb = 0
    try:
        import resource

        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception:
        pass
    print(
        json.dumps(
            {
                "impl": "pytorch-compile" if a.compile else "pytorch-eager",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "ms_per_step": ms,
                "ms_min": min(times),
                "ms_max": max(times),
                "tokens_per_s": a.batch * a.seq / (ms / 1000.0),
                "cpu_util": cpu_util,
                "loss": loss,
                "peak_rss_bytes": peak_kb * 1024,
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
