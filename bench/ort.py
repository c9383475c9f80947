"""ONNX Runtime as a peer of the benchmarks: export, its int8 flows, sessions timed beside torch.

    pip install -e .[bench]      # onnxruntime, onnx, onnxscript (never a dependency of qir itself)

ONNX Runtime's quantization tool is what many users pick for int8 on CPU, so bench/resnet18.py,
bench/minilm.py and bench/dynamic_minilm.py print its rows in the same run as qir's, and
bench/layer_profile.py compares its nodes with qir's kernels: the model exported with
`torch.onnx.export` (the dynamo exporter; the TorchScript one if it fails), run in float, and
quantized by each of ORT's flows that suits the model (static QDQ calibrated on the same batches
as qir, or dynamic). Sessions run with the same thread count as torch, one intra-op pool whose
idle threads spin or sleep as torch's do (`spinning`), and their calls return torch tensors so
that the accuracy of every row is measured alike.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch


def available() -> str | None:
    """None when onnxruntime, onnx and onnxscript import; otherwise why not."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        return f"not installed ({err.name}): pip install -e .[bench]"
    return None


_DIRECTORIES: list[tempfile.TemporaryDirectory] = []


def workdir() -> str:
    """A directory for the exported and quantized models of one run (removed at exit)."""
    directory = tempfile.TemporaryDirectory(prefix="qir-ort-")
    _DIRECTORIES.append(directory)
    return directory.name


def export(model: torch.nn.Module, args: tuple, path: str, input_names: list[str],
           output_name: str = "output") -> str:
    """Export `model(*args)` to `path` as one self-contained ONNX file; the note says which exporter
    ran (and why the first one did not). The dynamo exporter goes first: it is torch's current
    one; its weights are folded back into the file so that ORT's quantization tool reads them."""
    import onnx

    failures = []
    for dynamo in (True, False):
        try:
            torch.onnx.export(model, args, path, dynamo=dynamo, input_names=input_names,
                              output_names=[output_name], external_data=False, verbose=False)
            onnx.checker.check_model(path)
            exporter = "dynamo" if dynamo else "TorchScript"
            return exporter + (f" ({'; '.join(failures)})" if failures else "")
        except Exception as err:  # noqa: BLE001 - reported in the note, then the other exporter
            failures.append(f"{'dynamo' if dynamo else 'TorchScript'} export raised {type(err).__name__}: "
                            f"{str(err).splitlines()[0][:80]}")
    raise RuntimeError("; ".join(failures))


def quantize_static(source: str, path: str, feeds: list[dict], *, reduce_range: bool,
                    nodes: list[str] | None = None, per_channel: bool = True) -> str:
    """ORT's static QDQ flow as its documentation recommends for CPUs: the pre-processing step
    (shape inference and graph optimization; skipped, and said so, when it fails), then uint8
    activations and int8 weights, MinMax calibration on `feeds`; only the nodes named in `nodes`
    when given (ORT's `nodes_to_quantize`). Returns the note."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    note = []
    preprocessed = path + ".pre.onnx"
    try:
        quant_pre_process(source, preprocessed)
    except Exception as err:  # noqa: BLE001 - the issue's MiniLM crashed it; quantize without it
        note.append(f"pre-processing raised {type(err).__name__}, skipped")
        preprocessed = source
    ort_quantize_static(preprocessed, path, Batches(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.MinMax)
    return "; ".join(note)


def quantize_dynamic(source: str, path: str, *, per_channel: bool = True, reduce_range: bool = False) -> None:
    """ORT's dynamic flow: int8 weights (per channel), activations quantized at run time."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    ort_quantize_dynamic(source, path, per_channel=per_channel, reduce_range=reduce_range,
                         weight_type=QuantType.QInt8)


def spinning() -> bool:
    """Whether torch's OpenMP threads spin while they wait for work (libgomp's default; not with
    OMP_WAIT_POLICY=PASSIVE, which a machine shared with other work needs: threads that spin
    there burn the time slices the kernels then wait for)."""
    return os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"


@dataclass
class Session:
    """An ORT session called like a torch module: `session(**tensors)` or `session(*tensors)`
    returns the first output as a torch tensor. `threads` is ORT's intra-op pool (one inter-op
    thread, sequential execution), as torch.set_num_threads is torch's; its idle threads spin
    or sleep as torch's OpenMP threads do (`spinning()`), so both run under one policy."""

    path: str
    threads: int
    profile: bool = False
    names: list[str] = field(init=False)

    def __post_init__(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning() else "0")
        if self.profile:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(os.path.dirname(self.path), "ort_profile")
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        feeds = dict(zip(self.names, args)) | kwargs
        return torch.from_numpy(self.session.run(None, {k: v.numpy() for k, v in feeds.items()})[0])

    def end_profiling(self) -> str:
        """The path of the JSON trace of the calls made since the session was created."""
        return self.session.end_profiling()


def node_times(trace: str) -> dict[str, tuple[str, list[float]]]:
    """Node name -> (op type, the microseconds of each of its runs) from an ORT profile
    (`Session.end_profiling`), nodes in the order they ran."""
    import json

    with open(trace) as f:
        events = json.load(f)
    times: dict[str, tuple[str, list[float]]] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            name = event["name"].removesuffix("_kernel_time")
            times.setdefault(name, (event["args"].get("op_name", "?"), []))[1].append(float(event["dur"]))
    return times


def feeds_of(names: Iterable[str], batches: Iterable[Mapping[str, torch.Tensor] | tuple]) -> list[dict]:
    """Calibration feeds (input name -> numpy array) from the batches a torch flow calibrates on."""
    names = list(names)
    return [{k: v.numpy() for k, v in (b.items() if isinstance(b, Mapping) else zip(names, b))}
            for b in batches]

