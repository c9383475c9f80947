"""fbgemm's and oneDNN's `quantized.linear` from small products to BERT's, and which x86 picks.

    python bench/linear_engines.py [--runs 200] [--threads 2]

x86 packs a requantizing linear's weights for one engine per layer
(`qir.lowering.x86.engines.linear_engine`, from the row count and the weight's shape). This
times both engines' `quantized.linear` (uint8 in and out, per-channel int8 weights) on rows x
in -> out products from one row to 2048, interleaved, and their weight packing; it prints the
medians in microseconds, fbgemm's time over oneDNN's, the engine x86 picks and whether that is
the faster one. Run it in AVX2 mode too (`FBGEMM_ENABLE_INSTRUCTIONS=AVX2
ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`): the engines compare differently there.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from xdsl.dialects.builtin import TensorType, f32
from xdsl.utils.test_value import create_ssa_value

from qir.lowering.x86.engines import linear_engine
from qir.target import host
from timing import latencies_ms, machine

ROWS = (1, 32, 128, 512, 2048)
LAYERS = ((64, 64), (384, 384), (384, 1536), (1536, 384), (1024, 1024), (4096, 1024))
ENGINES = ("fbgemm", "onednn")


def packed(engine: str, weight, bias):
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        return torch.ops.quantized.linear_prepack(weight, bias)
    finally:
        torch.backends.quantized.engine = previous


def linear(x, weights):
    """The kernel as a lowered x86 module calls it: under the x86 engine, whichever engine packed
    the weights (switching the global engine per call would cost oneDNN about 25 us a call)."""
    return lambda: torch.ops.quantized.linear(x, weights, 0.05, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch 2.13's deprecation of quint8 (both engines' only way in)
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "x86"
    generator = torch.Generator().manual_seed(0)
    print(machine(args.threads))
    print(f"{'rows x in -> out':>20} {'fbgemm us':>10} {'oneDNN us':>10} {'fbgemm/oneDNN':>14} {'x86 picks':>10}")
    picked_faster = 0
    for k, n in LAYERS:
        weight = torch.randn(n, k, generator=generator)
        scales = (weight.abs().amax(1) / 127).double()
        qweight = torch.quantize_per_channel(weight, scales, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        bias = torch.randn(n, generator=generator)
        pack = latencies_ms({engine: lambda e=engine: packed(e, qweight, bias) for engine in ENGINES}, 20)
        for rows in ROWS:
            x = torch.quantize_per_tensor(torch.rand(rows, k, generator=generator), 1 / 255, 0, torch.quint8)
            # packed anew per row count: oneDNN's packed weights keep the primitive of the first
            # input shape they ran, and build one each call for any other (about 25 us more)
            weights = {engine: packed(engine, qweight, bias) for engine in ENGINES}
            times = latencies_ms({e: linear(x, weights[e]) for e in ENGINES}, args.runs)
            ratio = times["fbgemm"].median / times["onednn"].median
            pick = linear_engine(create_ssa_value(TensorType(f32, [rows, k])), create_ssa_value(TensorType(f32, [n, k])),
                                 target=host())
            faster = "fbgemm" if ratio < 1 else "onednn"
            picked_faster += pick == faster
            print(f"{f'{rows} x {k} -> {n}':>20} {1e3 * times['fbgemm'].median:10.1f} "
                  f"{1e3 * times['onednn'].median:10.1f} {ratio:14.2f} {pick:>10}{'' if pick == faster else '  (slower)'}")
        print(f"{'':>20} packing {k} -> {n}: fbgemm {1e3 * pack['fbgemm'].median:.0f} us, "
              f"oneDNN {1e3 * pack['onednn'].median:.0f} us")
    print(f"x86 picks the faster engine for {picked_faster} of {len(ROWS) * len(LAYERS)} products")


if __name__ == "__main__":
    main()
