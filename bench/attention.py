"""Float attention on the CPU: the eager chain a model exports against torch's fused kernel.

    python bench/attention.py [--runs 200] [--threads 1,2]

The native backends replace `softmax(q @ k^T * scale + mask) @ v` by one
`scaled_dot_product_attention` call (`qir.lowering.attention`). This times both on the shapes
of the models the benchmarks run (all-MiniLM-L6-v2's 16 sentences x 32 tokens, 12 heads of 32,
with a padding mask; a BERT-base batch, 8 x 128 tokens, 12 heads of 64; a decoder's prefill, 1
x 256 tokens, 16 heads of 64, causal mask as an additive tensor), at each thread count, in
alternating blocks (`timing.py`), and prints the median and fastest call of each and their
ratio, with the largest difference between the two results (float rounding only).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        print(machine(threads))
        print(f"{'shape':44} {'eager ms':>16} {'fused ms':>16}  fused/eager (median, fastest)  max |diff|")
        for name, shape in SHAPES.items():
            q, k, v, mask = inputs(*shape)
            scale = shape[3] ** -0.5
            times = latencies_ms({"eager": lambda: eager(q, k, v, mask, scale),
                                  "fused": lambda: fused(q, k, v, mask, scale)}, args.runs)
            diff = (eager(q, k, v, mask, scale) - fused(q, k, v, mask, scale)).abs().max().item()
            e, f = times["eager"], times["fused"]
            print(f"{name:44} {e.median:7.3f} / {e.fastest:6.3f} {f.median:7.3f} / {f.fastest:6.3f}  "
                  f"{f.median / e.median:6.2f} {f.fastest / e.fastest:6.2f}  {diff:.1e}")


if __name__ == "__main__":
    main()
