"""Quantized embedding bags (a recommender's sparse features) against float and torch.ao, in one run.

    python bench/embedding_bag.py [--rows 200000] [--width 64] [--bags 2048] [--per-bag 20] [--runs 40] [--threads 2]

The model: one `nn.EmbeddingBag` per mode qir lowers differently — a sum (fbgemm's rowwise
kernel in qir's x86 lowering), a mean with a padding row and a max (rows gathered, then
dequantized and bagged) — over `--rows` x `--width` tables, `--bags` bags of `--per-bag` random
indices each. Rows, all in eager mode:

* float eager;
* torch.ao: `nn.EmbeddingBag` swapped for `torch.ao.nn.quantized.EmbeddingBag` (uint8 rows with
  float scale and bias, `float_qparams_weight_only_qconfig`, fbgemm's kernel for every mode it runs);
* qir weight-int8 and weight-int8 with 4-bit tables on x86 (`WeightOnlyQuantizer(bits=8)`,
  `embedding_bits=4`), and the reference backend's int8 program for its accuracy.

Printed per row: latency (median and fastest of interleaved blocks, `timing.py`), the ratio to
float and to torch.ao, the SQNR of each bag output against float, and the tables' bytes.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
from timing import latencies_ms, machine  # noqa: E402

import qir  # noqa: E402
from qir.blockwise import weight_bytes  # noqa: E402
from qir.quantizer import WeightOnlyQuantizer  # noqa: E402


class Bags(torch.nn.Module):
    def __init__(self, rows: int, width: int):
        super().__init__()
        self.sum = torch.nn.EmbeddingBag(rows, width, mode="sum")
        self.mean = torch.nn.EmbeddingBag(rows, width, mode="mean", padding_idx=0)
        self.max = torch.nn.EmbeddingBag(rows, width, mode="max")

    def forward(self, ids, offsets):
        return self.sum(ids, offsets), self.mean(ids, offsets), self.max(ids, offsets)


def torch_ao(model: torch.nn.Module) -> torch.nn.Module:
    """torch.ao's weight-only embedding bags (its eager-mode swap, as `prepare`/`convert` do)."""
    from torch.ao.nn.quantized import EmbeddingBag as QuantizedBag
    from torch.ao.quantization import float_qparams_weight_only_qconfig

    swapped = copy.deepcopy(model)
    for name in ("sum", "mean", "max"):
        bag = getattr(swapped, name)
        bag.qconfig = float_qparams_weight_only_qconfig
        setattr(swapped, name, QuantizedBag.from_float(bag))
    return swapped


def sqnr(expected: torch.Tensor, got: torch.Tensor) -> float:
    return (10 * torch.log10(expected.pow(2).mean() / (expected - got).pow(2).mean())).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--bags", type=int, default=2048)
    parser.add_argument("--per-bag", type=int, default=20)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = Bags(args.rows, args.width).eval()
    ids = torch.randint(0, args.rows, (args.bags * args.per_bag,))
    offsets = torch.arange(0, ids.numel(), args.per_bag)
    inputs = (ids, offsets)
    expected = model(*inputs)

    rows = {"float eager": (model, 4 * sum(p.numel() for p in model.parameters()))}
    peer = torch_ao(model)
    rows["torch.ao quantized EmbeddingBag"] = (peer, 3 * args.rows * (args.width + 8))  # uint8 rows, f32 scale, bias
    for name, quantizer, backend in (("qir weight-int8 x86", WeightOnlyQuantizer(bits=8), "x86"),
                                     ("qir int4 tables x86", WeightOnlyQuantizer(bits=8, embedding_bits=4), "x86"),
                                     ("qir weight-int8 reference", WeightOnlyQuantizer(bits=8), "reference")):
        converted = qir.convert(qir.prepare(model, inputs, quantizer))
        rows[name] = (qir.lower(converted, backend), weight_bytes(converted.qir_program))

    times = latencies_ms({name: (lambda m=m: m(*inputs)) for name, (m, _) in rows.items()}, args.runs, block=5)
    print(f"embedding bags: 3 tables {args.rows} x {args.width}, {args.bags} bags of {args.per_bag}, "
          f"{args.threads} threads, {args.runs} runs per row in interleaved blocks of 5")
    print(machine(args.threads))
    print(f"{'flow':32} {'median ms':>9} {'fastest':>8} {'vs float':>8} {'vs ao':>6}  "
          f"{'SQNR dB sum / mean / max':>26}  {'MB':>6}")
    base, peer_ms = times["float eager"], times["torch.ao quantized EmbeddingBag"]
    for name, (module, size) in rows.items():
        ms = times[name]
        got = module(*inputs)
        quality = " / ".join(f"{sqnr(e, g):5.1f}" for e, g in zip(expected, got)) if module is not model else "float"
        print(f"{name:32} {ms.median:9.2f} {ms.fastest:8.2f} {base.median / ms.median:7.2f}x "
              f"{peer_ms.median / ms.median:5.2f}x  {quality:>26}  {size / 1e6:6.1f}")


if __name__ == "__main__":
    main()
