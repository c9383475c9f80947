"""What several test files share: the backends to run on, running as an AVX2 CPU, and the tools
in processes of their own.

The SQNR and the torch peers are in `peers.py`; one-op cases for every backend in `backend_cases.py`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from importlib.metadata import entry_points

import pytest
import torch

from qir.registry import available_backends


def _qir_backends() -> list[str]:
    """Every backend qir itself installs (its `qir.backends` entry points), as `available_backends`
    lists them: not a backend another package installs (`examples/qir_bmm_backend` lowers only its
    own ops) nor one a test registers."""
    own = {ep.name for ep in entry_points(group="qir.backends") if ep.value.startswith("qir.")}
    return [name for name in available_backends() if name in own]


QIR_BACKENDS = _qir_backends()
"""Every backend: x86, onednn, qnnpack, reference, inductor."""

INT8_BACKENDS = [name for name in QIR_BACKENDS if name != "inductor"]
"""Every backend whose lowered program runs int8 kernels or the integer reference (inductor
compiles on its first call, ~15 s: the tests that mean "every backend" at that cost say so)."""

KERNEL_BACKENDS = [name for name in INT8_BACKENDS if name != "reference"]
"""Every backend checked against the reference."""

AVX2_ENV = dict(FBGEMM_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
"""Set in a child process, these make torch's kernels (fbgemm, oneDNN, ATen) run as on an
AVX2 CPU without VNNI."""


def avx2_env() -> dict[str, str]:
    """This process's environment with `AVX2_ENV`, for a subprocess, with inductor's cache of its
    own: inductor keys its compiled kernels without `ATEN_CPU_CAPABILITY`, so a kernel compiled
    for this CPU's widest vectors would otherwise be loaded by the AVX2 process (and the other way
    round), which a real AVX2 CPU never does."""
    cache = os.path.join(tempfile.gettempdir(), f"qir-torchinductor-avx2-{os.getuid()}")
    return dict(os.environ, **AVX2_ENV, TORCHINDUCTOR_CACHE_DIR=cache)


def x86_with_avx2() -> bool:
    """An x86 CPU with at least AVX2: one that can run as an AVX2 CPU."""
    return platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def run_tool(tool: str, *args, stdin: str | None = None, env: dict | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """`qir-opt`, `qir-translate` or `qir-quantize` (`tool` is its module: `qir_opt`, ...) in a
    process of its own, as the console script runs it (each such process imports torch: ~2 s)."""
    return subprocess.run([sys.executable, "-m", f"qir.tools.{tool}", *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


FAST_ZOO = ("cnn_bn_residual", "split_cat", "transformer_encoder")
"""The zoo models (`zoo.models.ZOO`) a test run over the whole zoo keeps in the fast tier: convs with
a folded BatchNorm and a residual add, data movement, attention. The rest are marked `slow`."""


def zoo_params(names) -> list:
    """`names` for `pytest.mark.parametrize`, those not in `FAST_ZOO` marked `slow`."""
    return [name if name in FAST_ZOO else pytest.param(name, marks=pytest.mark.slow) for name in names]
