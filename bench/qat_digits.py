"""Accuracy on a real data set, offline: PTQ and QAT with 8-, 4- and 2-bit weights, qir against torchao.

    python bench/qat_digits.py [--epochs 10] [--qat-epochs 3] [--bits 8,4,2] [--no-torchao] [--threads 1]

scikit-learn's bundled digits (1797 8x8 images, `qir.examples.load_digits_split`: 1437 for
training, 360 for test, stratified, seeded), `qir.examples.DigitsCNN` (three conv + BatchNorm +
ReLU blocks and a linear classifier) trained in float with a fixed seed, then quantized:

* PTQ: `qir.prepare` with X86Quantizer (uint8 affine activations, symmetric per-channel int8
  weights; 4-bit and 2-bit weights are int8 storage in [-8, 7] and [-2, 1]), calibrated on the
  training batches, `qir.convert`; accuracy of the Q/DQ module and of the module `qir.lower`
  gives for x86 (torch's native int8 kernels). torchao's `prepare_pt2e` with its
  X86InductorQuantizer and the same weight ranges, its Q/DQ module (eager).
* QAT: from the float weights, every flow fine-tuned by one loop (`finetune`: same seed, batch
  order, optimizer, learning-rate schedule and number of steps), then converted. torchao's
  `prepare_qat_pt2e` on the model exported in training mode (and, as a second row, converted
  with the scales its fake quantizers trained with: see `torchao_qat`); qir's `prepare_qat`
  (issue 12), also with learned activation scales (LSQ). "trained module" in the notes is the
  fake-quantized module's own accuracy (eval mode, observers frozen). "float, fine-tuned" is the
  float model through the same loop, the control that separates what QAT wins back from what
  more training gives.

A flow that cannot run is a row saying why, not a failure (exit status 1 only when one of
qir's PTQ flows fails). Runs in about 1.5 minutes on 2 busy cores, most of it torchao's
`convert_pt2e` after QAT (it exports 96 conv-bn patterns on every call).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
import sys
import time
import warnings

import torch

import qir
from qir.examples import DigitsCNN, accuracy, load_digits_split, train
from qir.quantizer import QuantizationConfig, X86Quantizer, x86_config

WEIGHT_RANGES = {8: (-128, 127), 4: (-8, 7), 2: (-2, 1)}


class Unavailable(Exception):
    """A flow that cannot run here, and why (a row of the table, not a failure)."""


def qir_config(bits: int, is_qat: bool = False, learned: bool = False) -> QuantizationConfig:
    """x86_config's activations (uint8 affine; `learned`: LSQ scales) and symmetric per-channel
    weights in `bits` bits, stored as int8."""
    config = x86_config(is_qat=is_qat)
    lo, hi = WEIGHT_RANGES[bits]
    config = replace(config, weight=replace(config.weight, quant_min=lo, quant_max=hi))
    if learned:
        activation = replace(config.input_activation, observer="learned")
        config = replace(config, input_activation=activation, output_activation=activation)
    return config


def finetune(model, data, args, set_training=None) -> list[float]:
    """The one training loop every QAT flow (and the float control) goes through: the same
    seed, batch order, Adam with a cosine decay from `--qat-lr`, `--qat-epochs` epochs."""
    return train(model, (data.x_train, data.y_train), epochs=args.qat_epochs, seed=args.seed + 1,
                 lr=args.qat_lr, batch_size=args.batch_size, set_training=set_training)


def calibration_batches(data, args) -> list[torch.Tensor]:
    """The training set in order, in full batches (exported graphs fix the batch size)."""
    n = len(data.x_train) // args.batch_size
    return [data.x_train[i * args.batch_size:(i + 1) * args.batch_size] for i in range(n)]


def evaluate(module, data, args) -> float:
    return accuracy(module, data.x_test, data.y_test, batch_size=args.batch_size)


def row(flow, bits, qdq=None, lowered=None, note="", seconds=None) -> dict:
    return {"flow": flow, "bits": bits, "qdq": qdq, "lowered": lowered, "note": note, "seconds": seconds}


# --- qir ----------------------------------------------------------------------------------------

def qir_ptq(model, data, bits, args) -> dict:
    example = (data.x_train[:args.batch_size],)
    prepared = qir.prepare(model, example, X86Quantizer(qir_config(bits)))
    with torch.no_grad():
        for batch in calibration_batches(data, args):
            prepared(batch)
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, "x86")
    return row("qir PTQ", bits, evaluate(quantized, data, args), evaluate(lowered, data, args),
               "Q/DQ; x86 kernels")


def qir_qat(model, data, bits, args, learned: bool = False) -> dict:
    """issue 12's API: prepare_qat, train like a module, .eval(), convert, lower."""
    example = (data.x_train[:args.batch_size],)
    quantizer = X86Quantizer(qir_config(bits, is_qat=True, learned=learned))
    prepared = qir.prepare_qat(copy.deepcopy(model).train(), example, quantizer)
    finetune(prepared, data, args)
    prepared.eval()
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, "x86")
    trained = evaluate(prepared, data, args)  # eval mode: qir's fake quantizers observe only in training
    return row("qir QAT, LSQ" if learned else "qir QAT", bits, evaluate(quantized, data, args),
               evaluate(lowered, data, args), f"Q/DQ; x86 kernels; trained module {trained:.2f}")


def qir_qat_learned(model, data, bits, args) -> dict:
    """qir's QAT with learned activation scales (LSQ) in place of moving-average ranges."""
    return qir_qat(model, data, bits, args, learned=True)


# --- torchao's PT2E -----------------------------------------------------------------------------

def _torchao():
    try:
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    except Exception as err:  # noqa: BLE001 - an optional peer: its absence is a row
        raise Unavailable(f"torchao is not importable ({type(err).__name__}: {err})") from None
    return xiq, prepare_pt2e, prepare_qat_pt2e, convert_pt2e, move_exported_model_to_train, move_exported_model_to_eval


def _torchao_quantizer(xiq, bits: int, is_qat: bool):
    config = xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    lo, hi = WEIGHT_RANGES[bits]
    config = replace(config, weight=replace(config.weight, quant_min=lo, quant_max=hi))
    return xiq.X86InductorQuantizer().set_global(config)


def _observed(prepared) -> str:
    """How many observers / fake quantizers torchao's quantizer inserted, and on how many conv /
    linear weights; Unavailable when it annotated nothing. (DESIGN.md: its quantizers find convs
    and linears by `source_fn_stack`, which export stopped setting in torch 2.10; torch 2.13's
    `get_source_partitions` falls back on `nn_module_stack`, so nn.Conv2d / nn.Linear modules
    are found again, in training mode too, while functional calls would not be.)"""
    observers = [n for n in prepared.graph.nodes if n.op == "call_module"
                 and type(prepared.get_submodule(n.target)).__module__.startswith("torchao")]
    if not observers:
        raise Unavailable("X86InductorQuantizer annotated nothing (no observer inserted: it finds convs and "
                          "linears by source_fn_stack / nn_module_stack metadata)")
    weights = sum(1 for n in prepared.graph.nodes if n.op == "call_function"
                  and n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
                  and len(n.args) > 1 and getattr(n.args[1], "op", None) == "call_module")
    return f"{len(observers)} observers, {weights} weights"


def torchao_ptq(model, data, bits, args) -> dict:
    xiq, prepare_pt2e, _, convert_pt2e, _, _ = _torchao()
    example = (data.x_train[:args.batch_size],)
    exported = torch.export.export(copy.deepcopy(model).eval(), example).module()
    prepared = prepare_pt2e(exported, _torchao_quantizer(xiq, bits, is_qat=False))
    note = _observed(prepared)
    with torch.no_grad():
        for batch in calibration_batches(data, args):
            prepared(batch)
    quantized = convert_pt2e(prepared)
    return row("torchao PTQ", bits, evaluate(quantized, data, args), None, f"Q/DQ; {note}")


def torchao_qat(model, data, bits, args) -> list[dict]:
    """torchao's QAT as documented, and the same trained module converted with the scales its
    fake quantizers trained with. torchao 0.18's FusedMovingAvgObsFakeQuantize trains with
    ATen's fused kernel's scale (symmetric in [-2^(b-1), 2^(b-1) - 1]: max(|min| / 2^(b-1),
    max / (2^(b-1) - 1))) but `convert_pt2e` asks its observer, which divides max(|min|, max) by
    (qmax - qmin) / 2: up to 0.4% apart for int8, up to 1.5x for [-2, 1] (pytorch/ao#4824, merged
    after 0.18, makes convert read the kernel's)."""
    xiq, _, prepare_qat_pt2e, convert_pt2e, to_train, to_eval = _torchao()
    from torchao.quantization.pt2e import FusedMovingAvgObsFakeQuantize, disable_observer

    example = (data.x_train[:args.batch_size],)
    exported = torch.export.export(copy.deepcopy(model).train(), example).module()
    prepared = prepare_qat_pt2e(exported, _torchao_quantizer(xiq, bits, is_qat=True))
    note = _observed(prepared)
    finetune(prepared, data, args, set_training=to_train)
    to_eval(prepared)
    prepared.apply(disable_observer)  # its observers also move in eval mode: freeze them for the test set
    trained = evaluate(prepared, data, args)
    rows = [row("torchao QAT", bits, evaluate(convert_pt2e(copy.deepcopy(prepared)), data, args), None,
                f"Q/DQ; {note}; trained module {trained:.2f}")]
    if bits < 4:  # 0.4% apart at 8 bits, 7% at 4; each convert re-exports 96 patterns (~10 s here)
        for module in prepared.modules():
            if isinstance(module, FusedMovingAvgObsFakeQuantize):
                module.calculate_qparams = lambda m=module: (m.scale, m.zero_point)
        rows.append(row("  kernel's scales", bits, evaluate(convert_pt2e(prepared), data, args), None,
                        "the same, converted with the scales it trained with (ao#4824)"))
    return rows


def float_finetuned(model, data, bits, args) -> dict:
    model = copy.deepcopy(model)
    finetune(model, data, args)
    model.eval()
    return row("float, fine-tuned", "-", evaluate(model, data, args), None, "the QAT loop without quantization")


# --- the table ----------------------------------------------------------------------------------

def cpu_line() -> str:
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        from qir.target import host

        target = str(host())
    except Exception as err:  # noqa: BLE001 - informative only
        target = f"? ({type(err).__name__})"
    return (f"CPU: {name or 'unknown'}; torch {torch.__version__}, capability "
            f"{torch.backends.cpu.get_cpu_capability()}, VNNI {torch.cpu._is_vnni_supported()}, "
            f"torch threads {torch.get_num_threads()}; qir host target {target}")


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(rows, float_acc) -> None:
    print(f"\n{'flow':20} {'weights':>7} {'Q/DQ %':>7} {'x86 %':>7} {'vs float':>8} {'s':>5}  notes")
    for r in rows:
        best = r["lowered"] if r["lowered"] is not None else r["qdq"]
        delta = "-" if best is None else f"{best - float_acc:+.2f}"
        bits = r["bits"] if r["bits"] == "-" else f"{r['bits']}-bit"
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        print(f"{r['flow']:20} {bits:>7} {_pct(r['qdq']):>7} {_pct(r['lowered']):>7} {delta:>8} {seconds:>5}  {r['note']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3, help="fine-tuning epochs of every QAT flow")
    parser.add_argument("--lr", type=float, default=3e-3, help="float training learning rate (Adam, cosine)")
    parser.add_argument("--qat-lr", type=float, default=1e-3, help="QAT learning rate (Adam, cosine)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bits", default="8,4,2", help="weight widths, among 8, 4, 2")
    parser.add_argument("--no-torchao", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: as fast as 2 for this tiny model, far faster on a busy "
                             "machine, and the same training results whatever the core count)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bits = [int(b) for b in args.bits.split(",")]
    if any(b not in WEIGHT_RANGES for b in bits):
        parser.error(f"--bits: each of {', '.join(map(str, WEIGHT_RANGES))}")
    warnings.simplefilter("ignore")

    print(cpu_line())
    data = load_digits_split(args.seed)
    torch.manual_seed(args.seed)
    model = DigitsCNN()
    start = time.perf_counter()
    train(model, (data.x_train, data.y_train), epochs=args.epochs, seed=args.seed, lr=args.lr,
          batch_size=args.batch_size)
    model.eval()
    float_acc = evaluate(model, data, args)
    print(f"digits: {len(data.x_train)} training / {len(data.x_test)} test images; DigitsCNN float "
          f"{float_acc:.2f}% after {args.epochs} epochs ({time.perf_counter() - start:.1f} s); "
          f"QAT: {args.qat_epochs} epochs from the float weights, lr {args.qat_lr}\n")

    flows = [("qir PTQ", qir_ptq, b) for b in bits]
    if not args.no_torchao:
        flows += [("torchao PTQ", torchao_ptq, b) for b in bits]
    flows.append(("float, fine-tuned", float_finetuned, "-"))
    flows += [("qir QAT", qir_qat, b) for b in bits]
    flows += [("qir QAT, LSQ", qir_qat_learned, b) for b in bits]
    if not args.no_torchao:
        flows += [("torchao QAT", torchao_qat, b) for b in bits]

    rows = [row("float", "-", float_acc, None, f"{args.epochs} epochs")]
    failed = False
    for name, flow, b in flows:
        start = time.perf_counter()
        try:
            result = flow(model, data, b, args)
        except Unavailable as why:
            result = row(name, b, note=f"cannot run: {why}")
        except Exception as err:  # noqa: BLE001 - a row, and the exit status for qir's PTQ
            result = row(name, b, note=f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}")
            failed = failed or flow is qir_ptq
        results = result if isinstance(result, list) else [result]
        results[0]["seconds"] = time.perf_counter() - start
        rows += results
        for r in results:
            print(f"  {r['flow'].strip()} ({b}): {_pct(r['qdq'])} {r['note']}", file=sys.stderr, flush=True)
    print_table(rows, float_acc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
