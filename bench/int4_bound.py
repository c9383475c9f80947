"""How close to float any 4-bit weight code can bring bench/llm_decode.py's random Llama: the bound.

    python bench/int4_bound.py [--hidden 1024] [--layers 8] [--bits 4,4.5,5]

Issue 13 asks int4 weight-only quantization for a logits cosine of at least 0.99 on a Llama with
random (Gaussian) weights. For an i.i.d. Gaussian source, rate-distortion theory bounds every
code at R bits per value (round to nearest, GPTQ, AWQ, HQQ, vector quantization alike) to a
mean squared error of at least D = var * 2^(-2R), and its optimal test channel is known:
`w = w_hat + e`, with `e` of variance D independent of `w_hat`. This script gives every linear
(the LM head included, the embedding table kept float) weights drawn through that channel, per
output row, at `--bits` bits per weight, and prints the minimum cosine of the logits to float
over the same decoding steps as bench/llm_decode.py, beside round-to-nearest int4 in groups of 32
(what `WeightOnlyQuantizer(bits=4, group_size=32)` computes: fake-quantized in float here).
The bound ignores the scales a group-wise code also stores, which only favours the bound. It
bounds the logits where the error of a layer's weights reaches its output as a whole, that is
where its inputs are isotropic, as in a random model; a code that shapes its error by the input
covariance (GPTQ) gains only what that covariance departs from isotropy.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
from llm_decode import build, decode, eager_decoder, min_cosine  # noqa: E402
from timing import machine  # noqa: E402


def round_to_nearest(w: torch.Tensor, bits: int = 4, group: int = 32) -> torch.Tensor:
    """Asymmetric min/max round to nearest per group of `group` inputs, dequantized."""
    g = w.reshape(w.shape[0], -1, group)
    lo, hi = g.amin(-1, keepdim=True).clamp(max=0), g.amax(-1, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    zero = (-lo / scale).round()
    return ((g / scale).round() + zero).clamp(0, 2 ** bits - 1).sub(zero).mul(scale).reshape(w.shape)


def rate_distortion_channel(w: torch.Tensor, bits: float, generator: torch.Generator) -> torch.Tensor:
    """`w` through the Gaussian rate-distortion test channel at `bits` per value, per row."""
    var = w.var(dim=1, keepdim=True)
    kept = 1 - 2.0 ** (-2 * bits)  # 1 - D / var
    return kept * w + torch.sqrt(var * 2.0 ** (-2 * bits) * kept) * torch.randn(w.shape, generator=generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--cache", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--bits", default="4,4.5,5")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = build(args.hidden, args.layers, args.cache)
    tokens = [int(t) for t in torch.randint(0, 32000, (args.steps,), generator=torch.Generator().manual_seed(1))]
    expected = decode(eager_decoder(model, args.cache), tokens)

    def cosine(transform) -> float:
        changed = copy.deepcopy(model)
        with torch.no_grad():
            for module in changed.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.copy_(transform(module.weight))
        return min_cosine(decode(eager_decoder(changed, args.cache), tokens), expected)

    print(f"Llama hidden {args.hidden}, {args.layers} layers, vocab 32000, random weights; min logits cosine to "
          f"float over {args.steps} decoding steps")
    print(machine(torch.get_num_threads()))
    print(f"{'weights':58} {'min cos':>8}")
    print(f"{'round to nearest, int4, groups of 32 (qir int4)':58} {cosine(round_to_nearest):8.4f}")
    for bits in (float(b) for b in args.bits.split(",")):
        generator = torch.Generator().manual_seed(7)
        row = f"any code at {bits:g} bits per weight (rate-distortion bound)"
        print(f"{row:58} {cosine(lambda w: rate_distortion_channel(w, bits, generator)):8.4f}")


if __name__ == "__main__":
    main()
