"""The per-token choice and quantize of an int8 linear's input as one kernel inductor generates.

Per token, `rt.choose_qparams_per_token` and `rt.quantize_per_token_shifted` are about a dozen
eager torch calls and five passes over the activation (`amax`, `amin`, then multiply, add and
narrow). `quantize_rows` computes the same float32 operations in one C++ kernel, compiled by
inductor from the arithmetic below: two passes (the rows' minima and maxima, then the storage)
in one parallel region, no temporaries. On MiniLM's 16 x 32 x 384 activations (AMD EPYC,
AVX-512 VNNI, 2 threads, the fastest of 7 x 2000 calls, machine shared) a call went from 67 to
42 us, 16 x 32 x 1536 from 161 to 128 us; of that about 10 us is the call of a compiled graph.

Bit for bit the decomposed ops (`tests/test_dynamic.py`, ties included): the kernel performs the
eager operations in the same order in float32. Inductor's C++ is compiled without contracting
`x * r + z` to a fused multiply-add and without unsafe math (pinned in `_compile`); it keeps a
division by a constant a division on CPU; its `round` rounds ties to even, as torch's does. The
storage is `round(x * r) + 128` converted to uint8 from a float holding an integer in [0, 255]
(where the eager path reads the bits of a float32 sum, which inductor's conversions do not
promise to keep).

The kernel is traced with symbolic sizes, so it is compiled once per variant (symmetric or
affine, storage range), rank and thread count, when the module first runs it, not once per
batch or sequence length. The first call in a process pays for it: quantizing a one-linear
model and calling it once took 10.7 s with an empty inductor cache and 3.5 s from the cache
inductor keeps for the next process (most of it starting inductor; AMD EPYC, AVX-512 VNNI). Nothing compiled is stored in the module, which pickles and saves as
its program. Where inductor cannot compile (no C++ compiler), under tracing (`torch.compile`,
`make_fx` of the module, any dispatch mode), or on other inputs than float32, the eager
functions run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qir import dynamic_runtime as rt
from qir.lowering.inductor_kernels import compiled


def _symmetric(x: torch.Tensor, qmin: int, qmax: int):
    """`rt.choose_qparams_per_token(x, True)` and the shifted storage (`qmin`, `qmax` hold
    [-127, 127]: no clamp, see `rt.quantize_per_token`)."""
    scale = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg()).clamp(min=1e-5) / 127
    q = (x * scale.reciprocal()).round() + 128
    return scale, torch.zeros_like(scale, dtype=torch.int64), q.to(torch.uint8)


def _affine(x: torch.Tensor, qmin: int, qmax: int):
    """`rt.choose_qparams_per_token(x, False)` and the shifted storage clamped to [qmin, qmax]."""
    lo = x.amin(-1, keepdim=True).clamp(max=0.0)
    hi = x.amax(-1, keepdim=True).clamp(min=0.0)
    scale = ((hi - lo) / 255.0).clamp(min=rt.EPS)
    descaled_min, descaled_max = lo / scale, hi / scale
    zero_point = torch.where(descaled_min + -128 + (descaled_max + 127) > 0, -128 - descaled_min,
                             127 - descaled_max).clamp(-128, 127).round()
    q = (x * scale.reciprocal() + zero_point).round().clamp(qmin, qmax) + 128
    return scale, zero_point.to(torch.int64), q.to(torch.uint8)


def _eager(x: torch.Tensor, symmetric: bool, qmin: int, qmax: int):
    """What the kernel computes, by the eager functions (the fallback)."""
    scale, zero_point = rt.choose_qparams_per_token(x, symmetric)
    return scale, zero_point, rt.quantize_per_token_shifted(x, scale, zero_point, qmin, qmax, symmetric)


def quantize_rows(x: torch.Tensor, symmetric: bool, qmin: int, qmax: int) -> tuple[torch.Tensor, ...]:
    """`rt.choose_qparams_per_token(x, symmetric)` and `rt.quantize_per_token_shifted` of `x`
    with them, bit for bit: the scales, zero points and uint8 `q + 128` storage."""
    if (x.dtype != torch.float32 or not x.dim() or not x.numel() or torch.compiler.is_compiling()
            or torch._C._len_torch_dispatch_stack()):
        return _eager(x, symmetric, qmin, qmax)
    bounds = (-127, 127) if symmetric else (qmin, qmax)  # a symmetric kernel does not clamp
    key = (symmetric, *bounds, x.dim())
    kernel = compiled(("quantize_rows", *key, torch.get_num_threads()), lambda: _compile(*key),
                      "dynamic quantize's per-token kernel")
    if kernel is None:
        return _eager(x, symmetric, qmin, qmax)
    return tuple(kernel(x.contiguous()))


def _compile(symmetric: bool, qmin: int, qmax: int, rank: int) -> Callable:
    """Trace the arithmetic with symbolic sizes (a distinct symbol for every dimension: no guess
    that two are equal; MiniLM's activation as the sizes' hint) and compile it."""
    from torch.fx.experimental import _config as fx_config
    from torch.fx.experimental.proxy_tensor import make_fx

    fn = _symmetric if symmetric else _affine
    hint = (2,) * max(rank - 3, 0) + (16, 32, 384)[-rank:]
    with fx_config.patch(use_duck_shape=False), torch.no_grad():
        graph = make_fx(lambda x: fn(x, qmin, qmax), tracing_mode="symbolic")(torch.ones(hint))
    inputs = [node.meta["val"] for node in graph.graph.nodes if node.op == "placeholder"]
    with torch._inductor.config.patch({"cpp.enable_floating_point_contract_flag": "off",
                                       "cpp.enable_unsafe_math_opt_flag": False}):
        return torch._inductor.compile(graph, inputs)
