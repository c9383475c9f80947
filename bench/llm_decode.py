"""One decoding step of a Llama language model, weight-only quantized: qir against float and torchao.

    python bench/llm_decode.py [--hidden 1024] [--layers 8] [--runs 20] [--schemes int8,int4,int4-g128,fp16]
    FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python bench/llm_decode.py

The model is transformers' `LlamaForCausalLM` built from a `LlamaConfig` (random weights, vocab
32000, `--hidden`, `--layers`, grouped-query attention with a quarter of the heads for keys and
values), exported as ExecuTorch exports a decoder (`transformers.integrations.executorch.
TorchExportableModuleForDecoderOnlyLM`: a static KV cache held in buffers, one token and its
cache position in, the logits out). qir quantizes the exported program weight-only
(`qir.quantize(..., quantizer=WeightOnlyQuantizer(...), backend="x86")`: every linear, the LM
head included, and the embedding table) and runs it in eager mode; its first call compiles the
kernels inductor generates for each linear shape (timed apart, as "first call").

Printed, all in this one run, 2 threads: the CPU, then per flow the latency of one decoding step
(median and fastest of alternating blocks, `timing.py`), its ratio to float, the minimum cosine
between its logits and float's over `--steps` decoding steps (the same tokens, from an empty
cache), and the size of the model's weights (what the program stores: integer values at their
width, sub-channel tables as a float32 scale and an integer zero point of the storage's width
per group; torchao: the bytes of its tensors). The goals (issue 13): int8 cosine >= 0.999, int4
>= 0.99, weights 4x and ~7x smaller, faster than float and no slower than torchao.

torchao (0.18) runs `quantize_(model, Int8WeightOnlyConfig())` on the same model, eagerly and
compiled by inductor (its recommended use; compile time reported). Its `Int4WeightOnlyConfig` has
no CPU layout in this version (the row says why); `IntxWeightOnlyConfig(torch.int4,
PerGroup(32))`, the int4 weight-only config it offers for CPUs (ExecuTorch's), is measured in
its place.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
from timing import latencies_ms, machine  # noqa: E402

import qir  # noqa: E402
from qir.blockwise import weight_bytes  # noqa: E402
from qir.quantizer import WeightOnlyQuantizer  # noqa: E402

SCHEMES = {
    "int8": dict(bits=8),
    "int4": dict(bits=4, group_size=32),
    "int4-g64": dict(bits=4, group_size=64),
    "int4-g128": dict(bits=4, group_size=128),
    "int4-g128-emb4": dict(bits=4, group_size=128, embedding_bits=4),  # the embedding table 4-bit too
    "int4-sym": dict(bits=4, group_size=32, symmetric=True),
    "fp16": dict(dtype=torch.float16),
}


def build(hidden: int, layers: int, cache: int, seed: int = 0):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    heads = max(hidden // 64, 1)
    config = LlamaConfig(hidden_size=hidden, intermediate_size=int(hidden * 2.75) // 64 * 64, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=max(heads // 4, 1), vocab_size=32000,
                         max_position_embeddings=cache, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(use_cache=True, cache_implementation="static", max_length=cache,
                                               cache_config={"batch_size": 1, "max_cache_len": cache})
    return model


def exportable(model, cache: int):
    from transformers.integrations.executorch import TorchExportableModuleForDecoderOnlyLM

    return TorchExportableModuleForDecoderOnlyLM(model, batch_size=1, max_cache_len=cache)


def eager_decoder(model, cache: int):
    """The static-cache decoder to call eagerly: the exportable wrapper's inner module (the wrapper's
    own forward drops `cache_position` in transformers 5.25, so only its `export` is right)."""
    return exportable(model, cache).model.eval()


def step_inputs(token: int, position: int) -> dict:
    return {"input_ids": torch.tensor([[token]]), "cache_position": torch.tensor([position])}


def logits_of(output) -> torch.Tensor:
    return (output.logits if hasattr(output, "logits") else output).reshape(-1).float()


def decode(module, tokens: list[int]) -> list[torch.Tensor]:
    """The logits of each step of decoding `tokens` one at a time from position 0."""
    with torch.no_grad():
        return [logits_of(module(**step_inputs(t, p))) for p, t in enumerate(tokens)]


def min_cosine(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    return min(torch.nn.functional.cosine_similarity(g, e, 0).item() for g, e in zip(got, expected))


def float_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def subclass_bytes(model) -> int:
    """The bytes of a torchao-quantized model's weights: its tensor subclasses' inner tensors."""
    total = 0
    for p in model.parameters():
        names = getattr(p, "tensor_data_names", None)
        if names:
            for name in names:
                t = getattr(p, name)
                total += t.numel() * t.element_size()
            for name in getattr(p, "optional_tensor_data_names", ()) or ():
                t = getattr(p, name, None)
                if t is not None:
                    total += t.numel() * t.element_size()
        else:
            total += p.numel() * p.element_size()
    return total


def first_call(module, inputs: dict) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        module(**inputs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--cache", type=int, default=128, help="the static KV cache's length")
    parser.add_argument("--steps", type=int, default=8, help="decoding steps compared with float")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--schemes", default="int8,int4,int4-g128,fp16")
    parser.add_argument("--no-torchao", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    model = build(args.hidden, args.layers, args.cache)
    params = sum(p.numel() for p in model.parameters())
    print(machine(args.threads))
    print(f"LlamaForCausalLM: hidden {args.hidden}, {args.layers} layers, vocab 32000, {params / 1e6:.0f}M parameters, "
          f"static KV cache of {args.cache}; one decoding step (1 token)\n")

    start = time.perf_counter()
    exported = exportable(model, args.cache).export(**step_inputs(1, 0))
    print(f"export (static cache): {time.perf_counter() - start:.1f} s")
    tokens = [int(t) for t in torch.randint(0, 32000, (args.steps,), generator=torch.Generator().manual_seed(1))]
    position = args.steps - 1
    timed_inputs = step_inputs(tokens[-1], position)

    flows: dict[str, object] = {}
    info: dict[str, dict] = {}
    float_module = exported.module()
    expected = decode(float_module, tokens)
    flows["float32 (exported program, eager)"] = float_module
    info["float32 (exported program, eager)"] = {"bytes": float_bytes(model), "cosine": 1.0}

    for name in [s for s in args.schemes.split(",") if s]:
        quantizer = WeightOnlyQuantizer(**SCHEMES[name])
        start = time.perf_counter()
        lowered = qir.quantize(exported, kwargs=step_inputs(1, 0), quantizer=quantizer, backend="x86")
        quantize_s = time.perf_counter() - start
        label = f"qir {name} ({quantizer.description}), x86"
        compile_s = first_call(copy.deepcopy(lowered), timed_inputs)  # inductor compiles each kernel once
        info[label] = {"bytes": weight_bytes(lowered.qir_program), "cosine": min_cosine(decode(lowered, tokens), expected),
                       "note": f"quantize {quantize_s:.0f} s, first call {compile_s:.1f} s"}
        flows[label] = lowered

    if not args.no_torchao:
        torchao_flows(model, args, tokens, expected, flows, info, timed_inputs)

    calls = {label: (lambda m=m: m(**timed_inputs)) for label, m in flows.items()}
    timed = latencies_ms(calls, args.runs, block=5)
    base = timed["float32 (exported program, eager)"]
    float_size = info["float32 (exported program, eager)"]["bytes"]
    print(f"\n{'flow':58s} {'median ms':>10s} {'fastest':>8s} {'vs float':>14s} {'min cos':>9s} {'weights MB':>11s} "
          f"{'smaller':>8s}")
    print(f"{'':58s} {'':>10s} {'':>8s} {'median fastest':>14s}")
    for label, t in timed.items():
        i = info[label]
        print(f"{label:58s} {t.median:10.2f} {t.fastest:8.2f} {base.median / t.median:6.2f}x {base.fastest / t.fastest:6.2f}x "
              f"{i['cosine']:9.5f} {i['bytes'] / 1e6:11.1f} {float_size / i['bytes']:7.2f}x  {i.get('note', '')}")
    for label, reason in info.get("_skipped", {}).items():
        print(f"{label:52s} not run: {reason}")


def torchao_flows(model, args, tokens, expected, flows, info, timed_inputs) -> None:
    try:
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup
    except ImportError as err:
        info["_skipped"] = {"torchao": f"not installed ({err})"}
        return
    skipped = info.setdefault("_skipped", {})
    configs = {
        "torchao Int8WeightOnlyConfig": Int8WeightOnlyConfig(),
        "torchao Int4WeightOnlyConfig(group_size=128)": Int4WeightOnlyConfig(group_size=128),
        "torchao IntxWeightOnlyConfig(int4, PerGroup(32))": IntxWeightOnlyConfig(weight_dtype=torch.int4,
                                                                                  granularity=PerGroup(32)),
    }
    for label, config in configs.items():
        quantized = copy.deepcopy(model)
        try:
            quantize_(quantized, config)
            wrapper = eager_decoder(quantized, args.cache)
            cosine = min_cosine(decode(wrapper, tokens), expected)
        except Exception as err:  # noqa: BLE001  (the reason is the result)
            skipped[label] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            continue
        size = subclass_bytes(quantized)
        flows[f"{label}, eager"] = wrapper
        info[f"{label}, eager"] = {"bytes": size, "cosine": cosine}
        compiled = torch.compile(eager_decoder(copy.deepcopy(quantized), args.cache))
        try:
            compile_s = first_call(compiled, timed_inputs)
            cosine = min_cosine(decode(compiled, tokens), expected)
        except Exception as err:  # noqa: BLE001
            skipped[f"{label}, torch.compile"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            continue
        flows[f"{label}, torch.compile"] = compiled
        info[f"{label}, torch.compile"] = {"bytes": size, "cosine": cosine, "note": f"compile {compile_s:.0f} s"}


if __name__ == "__main__":
    main()
