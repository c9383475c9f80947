"""ResNet-18 at 1x3x224x224, 2 threads: qir's lowered backends against float eager, the torch peers and ONNX Runtime.

    python bench/resnet18.py [--backends x86,onednn,reference] [--runs 50] [--calibration 8] [--no-ort]

Every flow quantizes the same model (qir.examples' ResNet-18, torchvision's
shape, BatchNorm statistics set) and calibrates on the same batches; latency
is the median of `--runs` calls, the flows timed in alternating blocks of warm
calls, all in this one run.
Printed: latency, speed-up over float eager and over torch.ao FX mode
(`prepare_fx`/`convert_fx`, the x86 qconfig: the legacy native-kernel flow),
SQNR of the output against float, and qir's own times to quantize and lower.
Each qir backend quantizes with its own quantizer (derived from its capability table).
torchao's PT2E flow (X86InductorQuantizer, Q/DQ in eager) is measured when
torchao is installed; its documented flow raises on this model (one ReLU module
used twice per block), so it runs on a copy with the ReLUs split, which
computes the same function.
ONNX Runtime (bench/ort.py, when installed) runs the model exported by torch.onnx.export in float
and quantized by its static QDQ flow as its documentation recommends for CPUs: per-channel int8
weights, uint8 activations, MinMax calibration on the same batches, `reduce_range` (7-bit weights)
on a CPU without VNNI, whose u8 x s8 pairs would otherwise saturate in int16.
"""

from __future__ import annotations

import argparse
import copy
from functools import partial
import time
import warnings

import torch

import qir
import ort
from timing import Latency, latencies_ms, machine
from qir.examples import example


def sqnr(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    reference, approximation = reference.double(), approximation.double()
    return float(20 * torch.log10(reference.norm() / (reference - approximation).norm()))


def fx_mode(model, calibration):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (calibration[0],))
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return convert_fx(prepared)


class _SplitBlock(torch.nn.Module):
    """A BasicBlock with one ReLU module per use."""

    def __init__(self, block):
        super().__init__()
        self.block, self.relu_out = block, copy.deepcopy(block.relu)

    def forward(self, x):
        b = self.block
        identity = x if b.downsample is None else b.downsample(x)
        out = b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x)))))
        return self.relu_out(out + identity)


def _split_relus(model):
    """The same network with one ReLU module per use (torchao's flow raises on a reused module)."""
    model = copy.deepcopy(model)
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for i, block in enumerate(layer):
            layer[i] = _SplitBlock(block)
    return model


def torchao_flow(model, calibration):
    """torchao's documented PT2E flow; on the ReLU-split copy if it raises on the model itself."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    except Exception:  # noqa: BLE001 - the peer is optional
        return None, "torchao not installed"

    def flow(candidate):
        quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
        exported = torch.export.export(copy.deepcopy(candidate), (calibration[0],)).module()
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
        return convert_pt2e(prepared)

    try:
        return flow(model), ""
    except Exception as err:  # noqa: BLE001 - reported, then the workaround
        failure = f"{type(err).__name__}: {str(err)[:80]}"
    try:
        return flow(_split_relus(model)), f"ReLUs split; on the model itself it raised {failure}"
    except Exception as err:  # noqa: BLE001
        return None, f"{failure}; with ReLUs split: {type(err).__name__}: {str(err)[:80]}"


def ort_flows(model, calibration, x, threads: int) -> tuple[dict, dict]:
    """ONNX Runtime's rows: {name: session}, {name: note}; a row whose flow fails is a note."""
    why = ort.available()
    if why is not None:
        return {}, {"ONNX Runtime": why}
    directory = ort.workdir()
    source = f"{directory}/resnet18.onnx"
    exporter = ort.export(model, (x,), source, ["x"])
    vnni = torch.cpu._is_vnni_supported()
    quantized = f"{directory}/resnet18_int8.onnx"
    note = ort.quantize_static(source, quantized, ort.feeds_of(["x"], [(b,) for b in calibration]),
                               reduce_range=not vnni)
    static = f"ORT int8 static QDQ per-channel{'' if vnni else ' reduce_range'}"
    return ({"ORT float": ort.Session(source, threads), static: ort.Session(quantized, threads)},
            {"ORT float": f"exported by {exporter}", static: note or "pre-processed, MinMax calibration"})


def workload(batches: int):
    """The model, `batches` random calibration batches, the evaluation input and float's output on it."""
    entry = example("resnet18")
    model = entry.build()
    generator = torch.Generator().manual_seed(7)
    calibration = [torch.randn(1, 3, 224, 224, generator=generator) for _ in range(batches)]
    x = entry.inputs(1)[0]
    with torch.no_grad():
        expected = model(x)
    return model, calibration, x, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="x86", help="comma-separated qir backends")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--calibration", type=int, default=8, help="calibration batches")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-ort", action="store_true", help="leave out ONNX Runtime's rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    model, calibration, x, expected = workload(args.calibration)

    modules = {"float eager": model}
    notes = {"float eager": ""}
    modules["torch.ao FX convert_fx (x86)"] = fx_mode(model, calibration)
    notes["torch.ao FX convert_fx (x86)"] = ""
    ao, note = torchao_flow(model, calibration)
    slow = {}
    if ao is not None:
        slow["torchao PT2E X86Inductor, Q/DQ eager"] = ao
        notes["torchao PT2E X86Inductor, Q/DQ eager"] = note
    if not args.no_ort:
        sessions, ort_notes = ort_flows(model, calibration, x, args.threads)
        modules.update(sessions)
        notes.update(ort_notes)
    for backend in args.backends.split(","):
        start = time.perf_counter()
        prepared = qir.prepare(model, (x,), qir.get_backend(backend).quantizer())
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
        quantized = qir.convert(prepared)
        quantize_s = time.perf_counter() - start
        start = time.perf_counter()
        modules[f"qir {backend}"] = qir.lower(quantized, backend)
        lower_s = time.perf_counter() - start
        notes[f"qir {backend}"] = f"prepare+calibrate+convert {quantize_s:.2f} s, lower+emit {lower_s * 1e3:.0f} ms"
    times = latencies_ms({name: partial(m, x) for name, m in modules.items()}, args.runs)
    times.update(latencies_ms({name: partial(m, x) for name, m in slow.items()}, max(5, args.runs // 10), block=5))  # the Q/DQ form is slow
    float_ms, fx_ms = times["float eager"], times["torch.ao FX convert_fx (x86)"]
    nan = Latency(float("nan"), float("nan"))
    rows = []
    with torch.no_grad():
        for name, module in {**modules, **slow}.items():
            db = float("inf") if module is model else sqnr(expected, module(x))
            rows.append((name, times[name], db, notes[name]))
    if ao is None:
        rows.append(("torchao PT2E X86Inductor", nan, float("nan"), note))
    rows += [(name, nan, float("nan"), why) for name, why in notes.items() if name not in modules and name not in slow]

    print(f"ResNet-18, 1x3x224x224, {args.threads} threads, {args.calibration} calibration batches, "
          f"{args.runs} runs: median and fastest, each against float's and FX mode's")
    print(machine(args.threads))
    print(f"{'flow':40} {'median':>8} {'vs float':>9} {'vs FX':>7} {'fastest':>8} {'vs float':>9} {'vs FX':>7} "
          f"{'SQNR dB':>8}  notes")
    for name, ms, db, notes in rows:
        print(f"{name:40} {ms.median:8.2f} {float_ms.median / ms.median:8.2f}x {fx_ms.median / ms.median:6.2f}x "
              f"{ms.fastest:8.2f} {float_ms.fastest / ms.fastest:8.2f}x {fx_ms.fastest / ms.fastest:6.2f}x "
              f"{db:8.2f}  {notes}")


if __name__ == "__main__":
    main()
