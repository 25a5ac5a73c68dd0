"""Reference RoPE inverse frequencies for src/model/rope.rs's unit test.

An independent NumPy port of transformers' `_compute_default_rope_parameters`,
`_compute_linear_scaling_rope_parameters` and `_compute_llama3_parameters`
(modeling_rope_utils.py), in float64. Run: python3 benches/reference/rope_inv_freq.py
(needs numpy only); the printed values are hard-coded in the test.
"""
import math

import numpy as np


def default(head_dim, theta):
    return 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float64) / head_dim))


def linear(head_dim, theta, factor):
    return default(head_dim, theta) / factor


def llama3(head_dim, theta, factor, low_freq_factor, high_freq_factor, old_context_len):
    inv_freq = default(head_dim, theta)
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return np.where(is_medium, smoothed, inv_freq_llama)


def show(name, values):
    print(name)
    for i, v in enumerate(values):
        print(f"  {i:2d} {v!r}")


if __name__ == "__main__":
    # The synthetic Llama-3.2-1B-shaped test model: head_dim 24, theta 500000.
    show("llama3 hd24 theta5e5 f32 low1 high4 orig8192", llama3(24, 500000.0, 32.0, 1.0, 4.0, 8192))
    # Llama-3.2-1B itself: head_dim 64.
    show("llama3 hd64 theta5e5 f32 low1 high4 orig8192", llama3(64, 500000.0, 32.0, 1.0, 4.0, 8192))
    show("linear hd8 theta1e4 f4", linear(8, 10000.0, 4.0))
