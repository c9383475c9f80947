"""Accuracy on this CPU: every flow against float (ResNet-18, the transformer example, MiniLM), target named.

    python bench/targets.py [--models resnet18,transformer,minilm] [--calibration 4]
    FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python bench/targets.py

Without AVX-512 VNNI, x86's int8 kernels add pairs of products in int16 with saturation, so
the same quantized model computes differently on different CPUs (the second command makes a
VNNI machine behave as an AVX2 one). Printed per model: the Q/DQ program qir quantized for
this host's target, its exact reference, the same model quantized at full range (as for a VNNI
CPU) emulated on this target's kernels, qir's x86 / onednn / inductor lowerings, torch.ao FX
mode (x86 qconfig, its native kernels; ResNet-18 only: it cannot trace BertModel without
Hugging Face's tracer) and torchao's PT2E + inductor, each as SQNR against
float (ResNet-18) or min / mean cosine of sentence embeddings (MiniLM), with the median latency
of the eager flows against float's.
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial

import torch

import qir
from qir.examples import example
from qir.target import host
from timing import latencies_ms


def _row(name, module, score, note=""):
    return {"name": name, "module": module, "score": score, "note": note}


def _qir_rows(model, example_args, example_kwargs, calibration, score, backends):
    """Q/DQ, reference, emulation and lowered rows of qir for the host's target."""
    target = host()
    rows = []
    prepared = qir.prepare(model, example_args, qir.get_backend("x86").quantizer(target), kwargs=example_kwargs)
    with torch.no_grad():
        for args, kwargs in calibration:
            prepared(*args, **kwargs)
    quantized = qir.convert(prepared)
    rows.append(_row(f"qir Q/DQ, quantized for {target}", quantized, score(quantized)))
    rows.append(_row("qir reference (exact integers)", None, score(qir.lower(quantized, "reference"))))
    full = qir.prepare(model, example_args, qir.get_backend("x86").quantizer("x86-avx512-vnni"), kwargs=example_kwargs)
    with torch.no_grad():
        for args, kwargs in calibration:
            full(*args, **kwargs)
    full_range = qir.convert(full)
    rows.append(_row("qir Q/DQ at full range (for VNNI)", None, score(full_range)))
    emulated = qir.lower(full_range, "reference", target=target)
    rows.append(_row(f"  the same, emulated on {target}'s kernels", None, score(emulated)))
    rows.append(_row("  the same, x86 (what could saturate runs in float)", None, score(qir.lower(full_range, "x86"))))
    for name, quantizer in _alternatives(target):
        prepared = qir.prepare(model, example_args, quantizer, kwargs=example_kwargs)
        with torch.no_grad():
            for args, kwargs in calibration:
                prepared(*args, **kwargs)
        lowered = qir.lower(qir.convert(prepared), "x86")
        rows.append(_row(f"qir x86, {name}", lowered, score(lowered)))
    for backend in backends:
        try:
            start = time.perf_counter()
            lowered = qir.lower(quantized, backend)
            note = f"lower {time.perf_counter() - start:.1f} s"
            rows.append(_row(f"qir {backend}", lowered if backend != "inductor" else None, score(lowered), note))
        except Exception as err:  # noqa: BLE001 - reported as a row
            rows.append(_row(f"qir {backend}", None, float("nan"), f"{type(err).__name__}: {str(err)[:60]}"))
    return rows


def _alternatives(target):
    """The other ways of not saturating: 7-bit activations (torch's fbgemm qconfig), 7-bit
    weights (ONNX Runtime's reduce_range), and every layer fitted (no full-range share)."""
    from dataclasses import replace

    from qir.quantizer import X86Quantizer, x86_config

    base = x86_config()
    seven = replace(base.input_activation, quant_max=127)
    everywhere = X86Quantizer(target=target)
    everywhere.full_range_share = 0.0
    return [
        ("7-bit activations", X86Quantizer(replace(base, input_activation=seven, output_activation=seven),
                                           target="x86-avx512-vnni")),
        ("7-bit weights", X86Quantizer(replace(base, weight=replace(base.weight, quant_min=-64, quant_max=63)),
                                       target="x86-avx512-vnni")),
        ("fitted, every layer", everywhere),
    ]


def resnet18(args):
    from resnet18 import fx_mode, sqnr, torchao_flow, workload

    model, batches, x, expected = workload(args.calibration)

    def score(module):
        with torch.no_grad():
            return sqnr(expected, module(x))

    rows = [_row("float eager", model, float("inf"))]
    rows += _qir_rows(model, (x,), None, [((b,), {}) for b in batches], score, args.backends.split(","))
    fx = fx_mode(model, batches)
    rows.append(_row("torch.ao FX mode (x86 qconfig)", fx, score(fx)))
    ao, note = torchao_flow(model, batches)
    if ao is not None:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(ao)
        rows.append(_row("torchao PT2E + inductor", None, score(compiled), note))
    else:
        rows.append(_row("torchao PT2E + inductor", None, float("nan"), note))
    return "ResNet-18 1x3x224x224", "SQNR dB", rows, partial(_call, args=(x,), kwargs={})


def transformer(args):
    """The built-in BERT-style example (untrained weights), 2 x 32 tokens."""
    from resnet18 import sqnr

    entry = example("transformer")
    model = entry.build()
    inputs = entry.inputs(2)
    generator = torch.Generator().manual_seed(7)
    batches = [tuple(torch.randint(0, 1000, t.shape, generator=generator) if i == 0 else t
                     for i, t in enumerate(entry.inputs(2))) for _ in range(args.calibration)]
    with torch.no_grad():
        expected = model(*inputs)

    def score(module):
        with torch.no_grad():
            return sqnr(expected, module(*inputs))

    rows = [_row("float eager", model, float("inf"))]
    rows += _qir_rows(model, inputs, None, [(b, {}) for b in batches], score, args.backends.split(","))
    return "transformer example 2 x 32 tokens", "SQNR dB", rows, partial(_call, args=inputs, kwargs={})


def minilm(args):
    from minilm import batch, cosines, embed, load, sentences, torchao_rows

    tokenizer, model = load()
    calibration = [batch(tokenizer, sentences(7 * i)) for i in range(args.calibration)]
    inputs = batch(tokenizer, sentences(101))
    expected = embed(model, inputs)

    def score(module):
        low, mean = cosines(expected, embed(module, inputs))
        return f"{low:.4f} / {mean:.4f}"

    rows = [_row("float eager", model, "1 / 1")]
    rows += _qir_rows(model, (), inputs, [((), b) for b in calibration], score, args.backends.split(","))
    for name, module, low, mean, note in torchao_rows(model, calibration, inputs, expected):
        if "inductor" in name:
            rows.append(_row(name, None, f"{low:.4f} / {mean:.4f}", note))
    return "all-MiniLM-L6-v2 16 x 32 tokens", "min / mean cos", rows, partial(_call, args=(), kwargs=inputs)


def _call(module, args, kwargs):
    return module(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet18,transformer,minilm")
    parser.add_argument("--backends", default="x86,onednn,inductor")
    parser.add_argument("--calibration", type=int, default=4)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    print(f"target {host()} (torch CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"VNNI {torch.cpu._is_vnni_supported()}), {args.threads} threads")
    for name in args.models.split(","):
        title, unit, rows, call = {"resnet18": resnet18, "transformer": transformer, "minilm": minilm}[name](args)
        timed = {r["name"]: partial(call, r["module"]) for r in rows if r["module"] is not None}
        times = latencies_ms(timed, args.runs, block=5)
        base = times["float eager"].median
        print(f"\n{title}: {unit} against float; median latency of the eager flows against float's")
        print(f"{'flow':50} {unit:>17} {'median ms':>10} {'vs float':>9}  notes")
        for r in rows:
            t = times.get(r["name"])
            score = f"{r['score']:.2f}" if isinstance(r["score"], float) else str(r["score"])
            timing = f"{t.median:10.2f} {base / t.median:8.2f}x" if t is not None else f"{'':10} {'':9}"
            print(f"{r['name']:50} {score:>17} {timing}  {r['note']}")


if __name__ == "__main__":
    main()
