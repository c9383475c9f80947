"""Which linears of all-MiniLM-L6-v2 to quantize per token at run time, or to smooth: the accuracy of each mix.

    python bench/minilm_recipes.py [--backend reference]

The static X86 recipe everywhere, except some roles of linear in every layer (a
`set_module_name_regex` pattern) quantized dynamically (per token, symmetric or affine int8, or
per tensor) or statically with SmoothQuant (`x86_config(smoothing=alpha)`). Printed per recipe:
the minimum and mean cosine between float and quantized mean-pooled embeddings over bench/minilm.py's 64 held-out sentences (4 calibration batches), on
`--backend` (the reference backend by default: the program's own arithmetic, the same on every
CPU). bench/minilm.py's `mixed_quantizer` and `smoothed_quantizer` are rows this table chose.
"""

from __future__ import annotations

import argparse
import warnings

import torch

import qir
from minilm import batch, cosines, embed, load, sentences
from qir.quantizer import X86Quantizer, dynamic_config, x86_config
from timing import machine

LAYER = r".*encoder\.layer\.\d+\."
QKV_FFN_IN = r"(intermediate\.dense|attention\.self\.(query|key|value))"
RECIPES = {
    "static (no dynamic linear)": [],
    "output.dense per token, symmetric": [("output\\.dense", dynamic_config())],
    "output.dense per token, affine": [("output\\.dense", dynamic_config(symmetric=False))],
    "intermediate.dense per token, symmetric": [("intermediate\\.dense", dynamic_config())],
    "intermediate.dense per token, affine": [("intermediate\\.dense", dynamic_config(symmetric=False))],
    "intermediate.dense per tensor, affine": [("intermediate\\.dense", dynamic_config(per_token=False))],
    "attention.output.dense per token, affine": [("attention\\.output\\.dense", dynamic_config(symmetric=False))],
    "attention.self.value per token, affine": [("attention\\.self\\.value", dynamic_config(symmetric=False))],
    "query and key per token, affine": [("attention\\.self\\.(query|key)", dynamic_config(symmetric=False))],
    "both feed-forward linears per token, affine": [("(intermediate|output)\\.dense", dynamic_config(symmetric=False))],
    "intermediate.dense smoothed 0.5": [("intermediate\\.dense", x86_config(smoothing=0.5))],
    "intermediate.dense smoothed 0.75": [("intermediate\\.dense", x86_config(smoothing=0.75))],
    "query, key, value, intermediate smoothed 0.5": [(QKV_FFN_IN, x86_config(smoothing=0.5))],
    "query, key, value, intermediate smoothed 0.75": [(QKV_FFN_IN, x86_config(smoothing=0.75))],
    "both feed-forward linears smoothed 0.5": [("(intermediate|output)\\.dense", x86_config(smoothing=0.5))],
    "every linear smoothed 0.5": [(".*", x86_config(smoothing=0.5))],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    tokenizer, model = load()
    calibration = [((), batch(tokenizer, sentences(7 * i))) for i in range(4)]
    held_out = [batch(tokenizer, sentences(101 + 30 * i)) for i in range(4)]
    expected = [embed(model, b) for b in held_out]
    print(f"all-MiniLM-L6-v2, static X86 recipe but the linears named dynamic or smoothed; min / mean cosine over 64 "
          f"sentences, backend {args.backend}")
    print(machine(args.threads))
    for name, dynamic in RECIPES.items():
        quantizer = X86Quantizer()
        for pattern, config in dynamic:
            quantizer.set_module_name_regex(LAYER + pattern, config)
        lowered = qir.quantize(model, (), quantizer=quantizer, kwargs=held_out[0], calibration=calibration,
                               backend=args.backend)
        pairs = [cosines(e, embed(lowered, b)) for e, b in zip(expected, held_out)]
        print(f"{name:48} {min(p[0] for p in pairs):.4f} {sum(p[1] for p in pairs) / len(pairs):.4f}", flush=True)


if __name__ == "__main__":
    main()
