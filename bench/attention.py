"""Float attention on the CPU: the eager chain a model exports against torch's fused kernel.

    python bench/attention.py [--runs 200] [--threads 1,2] [--grid]

The native backends replace `softmax(q @ k^T * scale + mask) @ v` by one
`scaled_dot_product_attention` call (`qir.lowering.attention`). This times both on the shapes
of the models the benchmarks run (all-MiniLM-L6-v2's 16 sentences x 32 tokens, 12 heads of 32,
with a padding mask; a BERT-base batch, 8 x 128 tokens, 12 heads of 64; a decoder's prefill, 1
x 256 tokens, 16 heads of 64, causal mask as an additive tensor), at each thread count, in
alternating blocks (`timing.py`), and prints the median and fastest call of each and their
ratio, with the largest difference between the two results (float rounding only), and which of
the two `qir::attention` (what the native backends run, `qir.torch_ops`) takes there. `--grid`
times 15 shapes with a padding mask whose scores take 0.05 to 16 MB, around the size where the
two cross.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from qir.torch_ops import EAGER_SCORES_BYTES
from timing import latencies_ms, machine

SHAPES = {
    "MiniLM 16x12x32x32, padding mask": (16, 12, 32, 32, "padding"),
    "BERT-base 8x12x128x64, padding mask": (8, 12, 128, 64, "padding"),
    "decoder prefill 1x16x256x64, causal mask": (1, 16, 256, 64, "causal"),
}


def inputs(batch: int, heads: int, tokens: int, dim: int, mask: str):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, heads, tokens, dim, generator=g) for _ in range(3))
    if mask == "padding":
        additive = torch.zeros(batch, 1, 1, tokens)
        additive[:, :, :, tokens * 5 // 8:] = torch.finfo(torch.float32).min  # as BERT masks padding
    else:
        additive = torch.full((tokens, tokens), torch.finfo(torch.float32).min).triu(1)[None, None]
    return q, k, v, additive


def eager(q, k, v, mask, scale):
    return torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale + mask, -1).matmul(v)


def fused(q, k, v, mask, scale):
    return F.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=scale)


GRID = [(16, 12, 16, 32), (16, 12, 24, 32), (16, 12, 32, 32), (16, 12, 40, 32), (1, 12, 32, 64),
        (16, 12, 32, 64), (4, 12, 64, 64), (1, 12, 128, 64), (8, 12, 64, 64), (16, 12, 64, 32),
        (16, 12, 64, 64), (64, 12, 32, 32), (8, 12, 128, 64), (16, 12, 128, 32), (1, 16, 512, 64)]
"""(batch, heads, tokens, head size) for `--grid`."""


def qir_path(batch: int, heads: int, tokens: int, threads: int) -> str:
    """Which path `qir::attention` takes for these scores at `threads` (`qir.torch_ops`)."""
    eager = threads > 1 and batch * heads * tokens * tokens * 4 <= EAGER_SCORES_BYTES
    return "eager" if eager else "fused"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    shapes = ({f"{b}x{h}x{t}x{d}, padding mask": (b, h, t, d, "padding") for b, h, t, d in GRID} if args.grid
              else SHAPES)
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        print(machine(threads))
        print(f"{'shape':44} {'eager ms':>16} {'fused ms':>16}  fused/eager (median, fastest)  max |diff|"
              "  scores MB  qir::attention")
        right = 0
        for name, shape in shapes.items():
            q, k, v, mask = inputs(*shape)
            scale = shape[3] ** -0.5
            times = latencies_ms({"eager": lambda: eager(q, k, v, mask, scale),
                                  "fused": lambda: fused(q, k, v, mask, scale)}, args.runs)
            diff = (eager(q, k, v, mask, scale) - fused(q, k, v, mask, scale)).abs().max().item()
            e, f = times["eager"], times["fused"]
            path = qir_path(*shape[:3], threads)
            faster = "fused" if f.median < e.median else "eager"
            right += path == faster
            print(f"{name:44} {e.median:7.3f} / {e.fastest:6.3f} {f.median:7.3f} / {f.fastest:6.3f}  "
                  f"{f.median / e.median:6.2f} {f.fastest / e.fastest:6.2f}  {diff:.1e}  "
                  f"{shape[0] * shape[1] * shape[2] ** 2 * 4 / 2 ** 20:9.2f}  {path}"
                  f"{'' if path == faster else ' (the slower by the median)'}")
        print(f"qir::attention takes the faster path on {right} of {len(shapes)} shapes at {threads} threads")


if __name__ == "__main__":
    main()
