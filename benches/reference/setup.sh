#!/usr/bin/env bash
# Create benches/reference/.venv with what the PyTorch side of `llite-tui bench` needs:
# torch (CPU wheels are enough) and transformers. Never needed by the tests.
#   bash benches/reference/setup.sh            # then: cargo run --release -- bench --large
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL are honoured (e.g. the PyTorch CPU wheel index).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --quiet --upgrade pip
"$here/.venv/bin/pip" install --quiet torch transformers safetensors
"$here/.venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
