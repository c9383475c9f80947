"""Kernels inductor generates from their arithmetic, compiled once per process and key.

The x86 weight-only linears (`qir.lowering.weight_only_kernels`) and the per-token quantize of
dynamic linears (`qir.lowering.dynamic_kernels.kernels`) run C++ that inductor compiles from
their torch arithmetic when a module first needs it. Compiling takes seconds, so each kernel is
compiled once per process for its key (what it was traced for: shapes, variant, thread count)
and shared by every module. Where inductor cannot compile (no C++ compiler, or it fails), the
caller is told once, with a warning, and runs its eager arithmetic instead.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

_KERNELS: dict[tuple, Callable | None] = {}
_LOCK = threading.Lock()


def compiled(key: tuple, build: Callable[[], Callable], what: str) -> Callable | None:
    """The kernel `build()` compiles, built the first time `key` is asked for; None (with a
    warning naming `what`) when inductor cannot compile it. Keys start with their user's name."""
    kernel = _KERNELS.get(key, False)
    if kernel is not False:
        return kernel
    with _LOCK:
        if key not in _KERNELS:
            try:
                _KERNELS[key] = build()
            except Exception as err:  # no C++ compiler, or inductor fails: the eager arithmetic
                first = str(err).splitlines()[0] if str(err) else ""
                warnings.warn(f"{what}: inductor could not compile it ({type(err).__name__}: {first}); "
                              "it runs eagerly (slower, the same results)", RuntimeWarning, stacklevel=4)
                _KERNELS[key] = None
        return _KERNELS[key]
