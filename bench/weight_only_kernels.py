"""Weight-only linear kernels on this CPU: which one is fastest, and is it right?

    python bench/weight_only_kernels.py [--layers 8] [--size 2048] [--rows 1,16] [--runs 40]
    FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python bench/weight_only_kernels.py

Issue 13's workload: `--layers` chained `size x size` linears (random weights, no bias), batch
`--rows` (1 = a decoding step), 2 threads. Each candidate kernel runs the chain; printed per
kernel: the latency (median and fastest of alternating blocks, `timing.py`), the speed-up over
float32, and its largest error against the reference of its scheme (the weight dequantized in
float64, then a float64 matmul), relative to the output's largest value. A kernel is only
worth choosing if that error is float32 rounding (~1e-6), not a different arithmetic.

Candidates: torch's eager kernels (`aten._weight_int8pack_mm`, `aten._weight_int4pack_mm_for_cpu`
after `_convert_weight_to_int4pack_for_cpu`, fbgemm's `quantized.linear_dynamic_fp16`), the
dequantize-then-matmul eager formulation, and the kernels qir generates with inductor
(`qir.lowering.weight_only_kernels`). The int4 kernel of torch computes `(q - 8) * s + z` with a
float `z`, which qir's types write `(q - zp) * s`: the same weights up to a rounding.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from timing import latencies_ms, machine  # noqa: E402

from qir.lowering.weight_only_kernels import kernels as woq  # noqa: E402


def quantize_rows(w: torch.Tensor, bits: int):
    scale = (w.abs().amax(1) / (2 ** (bits - 1) - 0.5)).clamp(min=1e-8)
    q = torch.round(w / scale[:, None]).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).to(torch.int8)
    return q, scale, torch.zeros_like(scale)


def quantize_groups(w: torch.Tensor, group: int):
    """Asymmetric uint4 per group of `group` inputs: storage [N, K], scales/zero points [N, K/group]."""
    n, k = w.shape
    g = w.reshape(n, k // group, group)
    lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
    scale = ((hi - lo) / 15).clamp(min=1e-8)
    zp = torch.round(-lo / scale).clamp(0, 15)
    q = torch.round(g / scale[..., None] + zp[..., None]).clamp(0, 15).to(torch.uint8).reshape(n, k)
    return q, scale, zp


def chain(layer_fns):
    def run(x):
        for fn in layer_fns:
            x = fn(x)
        return x
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rows", default="1,16")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--groups", default="32,128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = k = args.size
    weights = [torch.randn(n, k) / k ** 0.5 for _ in range(args.layers)]
    print(machine(args.threads))
    print(f"{args.layers} chained {n}x{k} linears, no bias\n")

    schemes: dict[str, tuple] = {}  # name -> (reference weights, {kernel: layer fns})
    q8 = [quantize_rows(w, 8) for w in weights]
    ref8 = [(q.double() * s.double()[:, None]) for q, s, _ in q8]
    packed8 = [woq.pack(q, s, z, 8, signed=True) for q, s, z in q8]
    schemes["int8 per channel"] = (ref8, {
        "aten._weight_int8pack_mm": [lambda x, q=q, s=s: torch.ops.aten._weight_int8pack_mm(x, q, s) for q, s, _ in q8],
        "dequantize + F.linear (eager)": [lambda x, q=q, s=s: F.linear(x, q.float() * s[:, None]) for q, s, _ in q8],
        "qir generated (rows, int32 lanes)": [lambda x, p=p: woq.linear(x, p) for p in packed8],
    })
    for group in (int(g) for g in args.groups.split(",")):
        q4 = [quantize_groups(w, group) for w in weights]
        ref4 = [((q.double().reshape(n, -1, group) - z.double()[..., None]) * s.double()[..., None]).reshape(n, k)
                for q, s, z in q4]
        packed4 = [woq.pack(q, s, z, 4, signed=False, group=group) for q, s, z in q4]
        tiny = []
        for q, s, z in q4:  # torch's int4 kernel: (q - 8) * s + zf, zf = (8 - zp) * s
            scale_zero = torch.stack([s.t(), ((8 - z) * s).t()], -1).contiguous()
            tiny.append((torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1), scale_zero))
        schemes[f"int4 groups of {group}"] = (ref4, {
            "aten._weight_int4pack_mm_for_cpu": [
                lambda x, w=w, sz=sz, g=group: torch.ops.aten._weight_int4pack_mm_for_cpu(x, w, g, sz) for w, sz in tiny],
            "qir generated (groups, int32 lanes)": [lambda x, p=p: woq.linear(x, p) for p in packed4],
        })
    w16 = [w.half() for w in weights]
    fp16_packed = [torch.ops.quantized.linear_prepack_fp16(w.float(), None) for w in w16]
    schemes["float16"] = ([w.double() for w in w16], {
        "fbgemm quantized.linear_dynamic_fp16": [lambda x, p=p: torch.ops.quantized.linear_dynamic_fp16(x, p)
                                                 for p in fp16_packed],
    })

    for rows in (int(r) for r in args.rows.split(",")):
        x = torch.randn(rows, k)
        calls = {"float32 F.linear": chain([lambda x, w=w: F.linear(x, w) for w in weights])}
        errors = {}
        for scheme, (reference, kernels) in schemes.items():
            expected = x.double()
            for w in reference:
                expected = expected @ w.t()
            for name, fns in kernels.items():
                label = f"{scheme}: {name}"
                fn = chain(fns)
                with torch.no_grad():
                    got = fn(x)  # the first call compiles a generated kernel
                errors[label] = ((got.double() - expected).abs().max() / expected.abs().max()).item()
                calls[label] = fn
        timed = latencies_ms({name: (lambda fn=fn: fn(x)) for name, fn in calls.items()}, args.runs)
        base = timed["float32 F.linear"].median
        print(f"rows = {rows}")
        print(f"  {'kernel':58s} {'median ms':>10s} {'fastest':>8s} {'vs float':>9s} {'rel. error':>11s}")
        for name, t in timed.items():
            error = f"{errors[name]:.1e}" if name in errors else ""
            print(f"  {name:58s} {t.median:10.2f} {t.fastest:8.2f} {base / t.median:8.2f}x {error:>11s}")
        print()


if __name__ == "__main__":
    main()
