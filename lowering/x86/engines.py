"""Which engine x86 packs a requantizing linear's weights for: chosen by the CPU and the product.

oneDNN's `quantized.linear` is faster than fbgemm's at BERT's shapes (hundreds of rows, 384+
features), but its fixed cost per call is higher, and without VNNI its int8 GEMM is slower on
narrow products: fbgemm's wins on few rows (a decode step, a classifier head) and on 64-wide
layers. `python bench/linear_engines.py` (AMD EPYC, 2 threads, load 1.5-1.8; AVX2 mode: the
same binary with `FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`),
fbgemm's time over oneDNN's:

    rows x in -> out     AVX-512 VNNI   AVX2
    1 x 4096 -> 1024     0.89           0.50
    1 x 384 -> 384       0.76           0.65
    32 x 64 -> 64        0.77           0.71
    128 x 64 -> 64       0.84           0.77
    32 x 1024 -> 1024    1.01           0.78
    32 x 4096 -> 1024    1.18           0.83
    512 x 384 -> 1536    1.18           1.07
    2048 x 64 -> 64      1.66           1.02

So fbgemm below 2**21 multiply-adds or for few rows (8 with VNNI, 32 without), oneDNN above:
the faster engine in 27 of the bench's 30 products on each, the other engine at most 7% faster
on the three others. Packing follows the choice (a 64x64 per-channel weight:
fbgemm 82 us, oneDNN 214 us). Both accumulate exactly in int32 (with the same int16 pairs
without VNNI, which `qir.accumulation` models), so the choice changes speed, not results.
oneDNN's packed weights also keep the primitive of the first input shape they ran and build
one on every call of another shape (about 25 us more).
"""

from __future__ import annotations

import math

from xdsl.ir import SSAValue

SMALL_PRODUCT = 2**21


def linear_engine(x: SSAValue, w: SSAValue, *, target) -> str:
    """The engine for the linear reading `x` with weight `w` on `target`: fbgemm for a small
    product or few rows, oneDNN otherwise, and when the row count is not static."""
    *rows, in_features = x.type.get_shape()
    if any(d < 0 for d in rows):
        return "onednn"
    count = math.prod(rows)
    few = 32 if target.pairs_saturate else 8
    small = count * in_features * w.type.get_shape()[0] < SMALL_PRODUCT
    return "fbgemm" if count <= few or small else "onednn"


FUNCTIONS = {"linear_engine": linear_engine}
