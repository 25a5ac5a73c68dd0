"""PyTorch's f32 GEMM throughput for `llite-tui bench`'s roofline row.

Usage: python gemm.py --shapes 2048x256x704,2048x2048x2048 [--threads N] [--repeats 5]
Each shape is MxKxN: an [M, K] @ [K, N] product. Prints one JSON object on stdout:
{"torch": version, "threads": n, "shapes": [{"m":..,"k":..,"n":..,"gflops": best}]}.
Needs only `torch`; never used by the tests.
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()

    import torch

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = []
    for spec in a.shapes.split(","):
        m, k, n = (int(x) for x in spec.split("x"))
        x = torch.randn(m, k)
        w = torch.randn(k, n)
        torch.mm(x, w)  # warm-up
        best = float("inf")
        for _ in range(max(1, a.repeats)):
            start = time.perf_counter()
            torch.mm(x, w)
            best = min(best, time.perf_counter() - start)
        out.append({"m": m, "k": k, "n": n, "gflops": 2.0 * m * k * n / best / 1e9})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "shapes": out}))


if __name__ == "__main__":
    sys.exit(main())
