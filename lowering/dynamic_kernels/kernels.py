"""Per-token symmetric quantization for oneDNN's int8 linear in one kernel inductor generates.

A linear quantized per token runs `choose_qparams` (symmetric, int8 storage in [-127, 127]) and
`dynamic_quantize` on its input, then hands the int8 values to oneDNN as uint8 `q + 128`
(`emit.linear_rows`). In torch's eager calls that is eight passes over the activation, each a
small op (amax, amin, maximum, clamp, div, mul, round, to int8, then the sign-bit xor), which on
BERT-sized activations (512 x 384 or x 1536) cost more than the int8 matmul they feed. Here the
same float32 arithmetic is one function, `_rows`, compiled by inductor into one loop nest: the
row's max and min, its scale `max(max(x), -min(x)), 1e-5) / 127`, then `round(x * (1 / s)) + 128`
written as uint8. That is `qir.dynamic_runtime`'s result bit for bit: inductor's C++ computes the
division, the reciprocal, the product and the round-half-to-even as IEEE float32 operations, as
torch's eager kernels do (it rewrites none of them, and builds without unsafe math), and adding
128 after rounding (to an integer in [-127, 127]) is exact, where adding it before would round
ties differently. `tests/test_dynamic.py` checks both against the `quantized_decomposed` ops.

The kernel is compiled once per row length and thread count (`torch.compile`, a few seconds the
first time, less once its C++ is in inductor's cache), with the number of rows dynamic, so a new
batch or sequence length does not compile again. Its generated code is not taken from inductor's
FX graph cache: that cache's key leaves out the vector ISA `ATEN_CPU_CAPABILITY` selects, and a
kernel cached by a process told `avx2` (as the tests tell one) gave other numbers, or corrupted
the heap, in a process using AVX-512, and the reverse (torch 2.13, AMD EPYC); its C++ build
cache, keyed on the code and the compiler flags, is kept. Where inductor cannot compile (no C++
compiler), every call takes the eager arithmetic, with a warning.
"""

from __future__ import annotations

import warnings

import torch

_COMPILED: list = []
"""The compiled `_rows` (one `torch.compile` object: dynamo keeps a kernel per row length and thread
count behind it), or None once compilation failed, then every call is eager."""


def _rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`x` `[M, K]` float32 -> the rows' scales `[M, 1]` float32 and `round(x * (1 / s)) + 128` as uint8."""
    scale = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg()).clamp(min=1e-5) / 127
    return scale, (torch.mul(x, torch.reciprocal(scale)).round() + 128).to(torch.uint8)


def _kernel():
    if not _COMPILED:
        _COMPILED.append(torch.compile(_rows, fullgraph=True, dynamic=False, options={"fx_graph_cache": False}))
    return _COMPILED[0]


@torch.no_grad()
def choose_quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`choose_qparams_per_token(x, True)` then `quantize_per_token(..., -127, 127, int8, True)`
    (`qir.dynamic_runtime`), the int8 storage written shifted to uint8 (`q + 128`): the scales of
    shape `x.shape[:-1] + (1,)` (float32), their zero points (int64 zeros), the shifted storage."""
    rows = x.reshape(-1, x.shape[-1])
    kernel = _kernel()
    if kernel is not None and rows.shape[0] > 0:
        if rows.shape[0] > 1:  # one row is compiled on its own: dynamo specializes sizes 0 and 1
            torch._dynamo.mark_dynamic(rows, 0)
        try:
            scale, shifted = kernel(rows)
        except Exception as err:  # no C++ compiler, or inductor fails: the eager arithmetic
            first = str(err).splitlines()[0] if str(err) else ""
            warnings.warn(f"dynamic quantization kernel: inductor could not compile it ({type(err).__name__}: "
                          f"{first}); it runs eagerly (slower, the same arithmetic)", RuntimeWarning, stacklevel=2)
            _COMPILED[0] = None
            scale, shifted = _rows(rows)
    else:
        scale, shifted = _rows(rows)
    scale = scale.reshape(*x.shape[:-1], 1)
    return scale, torch.zeros(scale.shape, dtype=torch.int64), shifted.reshape(x.shape)
