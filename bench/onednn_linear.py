"""The linear kernels at BERT-like shapes: oneDNN's qlinear (uint8 out, float32 out, gelu fused)
against fbgemm's `quantized.linear` and float `F.linear`.

    python bench/onednn_linear.py [--rounds 5] [--runs 200] [--threads 2]

16 sequences of 32 tokens (512 rows) through 384 -> 384, 384 -> 1536 and 1536 -> 384, the
shapes of a small BERT's attention output and feed-forward layers, with per-channel int8
weights. Every kernel is timed in each of `--rounds` rounds (interleaved, so that a busy
machine slows them alike); a round's figure is the median of `--runs` calls, and the table
shows the median over rounds and, in parentheses, the fastest single call, in microseconds.
On a machine other jobs keep busy the medians take the scheduler's time slices (they come
out as multiples of 4 ms); the fastest call is then the kernel's own time. The figures are why
x86's float-output linears on oneDNN-packed weights call `qlinear_pointwise`
(`lowering/quantized_kernels/emit.py`); nothing reads them at run time.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

SHAPES = ((384, 384), (384, 1536), (1536, 384))
TOKENS = (16, 32)


def _times_us(fn, runs: int) -> list[float]:
    for _ in range(max(5, runs // 10)):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def kernels(k: int, n: int, generator: torch.Generator) -> dict:
    """The calls to time for one `k -> n` layer, by name."""
    onednn, quantized = torch.ops.onednn, torch.ops.quantized
    x = torch.randn(*TOKENS, k, generator=generator)
    qx = torch.randint(0, 256, (*TOKENS, k), dtype=torch.uint8, generator=generator)
    weight = torch.randn(n, k, generator=generator) * 0.05
    bias = torch.randn(n, generator=generator)
    qweight = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=generator)
    scales = torch.rand(n, generator=generator) * 1e-3 + 5e-4
    zero_points = torch.zeros(n, dtype=torch.int64)
    packed = onednn.qlinear_prepack(qweight, [*TOKENS, k])
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    fbgemm_packed = quantized.linear_prepack(
        torch._make_per_channel_quantized_tensor(qweight, scales.double(), zero_points, 0), bias)
    fbgemm_x = torch._make_per_tensor_quantized_tensor(qx, 0.02, 128)
    torch.backends.quantized.engine = previous

    def fbgemm_linear():
        torch.backends.quantized.engine = "fbgemm"
        try:
            return quantized.linear(fbgemm_x, fbgemm_packed, 0.05, 128)
        finally:
            torch.backends.quantized.engine = previous

    qlinear = onednn.qlinear_pointwise.default
    return {
        "float F.linear": lambda: F.linear(x, weight, bias),
        "onednn u8 out": lambda: qlinear(qx, 0.02, 128, packed, scales, zero_points, bias, 0.05, 128, torch.uint8,
                                         "none", [], ""),
        "onednn f32 out": lambda: qlinear(qx, 0.02, 128, packed, scales, zero_points, bias, 1.0, 0, torch.float32,
                                          "none", [], ""),
        "onednn u8 + gelu": lambda: qlinear(qx, 0.02, 128, packed, scales, zero_points, bias, 0.05, 128, torch.uint8,
                                            "gelu", [], "none"),
        "fbgemm quantized.linear": fbgemm_linear,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch 2.13's deprecation of quint8 (fbgemm's only way in)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    layers = {f"{k}->{n}": kernels(k, n, generator) for k, n in SHAPES}
    medians: dict[tuple[str, str], list[float]] = {}
    fastest: dict[tuple[str, str], float] = {}
    with torch.no_grad():
        for _ in range(args.rounds):
            for layer, calls in layers.items():
                for name, call in calls.items():
                    times = _times_us(call, args.runs)
                    medians.setdefault((layer, name), []).append(statistics.median(times))
                    fastest[(layer, name)] = min(fastest.get((layer, name), float("inf")), min(times))
    names = list(next(iter(layers.values())))
    print(f"{TOKENS[0]}x{TOKENS[1]} tokens, {args.threads} threads, median of {args.rounds} rounds of "
          f"{args.runs} calls (fastest call), us")
    print(f"{'kernel':26}" + "".join(f"{layer:>18}" for layer in layers))
    for name in names:
        print(f"{name:26}" + "".join(f"{statistics.median(medians[(layer, name)]):10.0f} ({fastest[(layer, name)]:5.0f})"
                                     for layer in layers))


if __name__ == "__main__":
    main()
