"""The ONNX Runtime peer of the benchmarks (bench/ort.py, bench/layer_profile.py) computes what it claims.

The rows bench/resnet18.py and bench/minilm.py print for ORT are only a fair comparison if the
exported model is the torch model, ORT's static flow is calibrated on the batches it is given,
and the profile reading counts every node of every call. Checked here on a small conv network;
skipped without onnxruntime (the `bench` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import layer_profile  # noqa: E402
import ort  # noqa: E402
from peers import sqnr  # noqa: E402


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.relu(self.conv2(y) + y)
        return self.fc(y.mean((2, 3)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(2, 3, 16, 16)
    path = str(tmp_path_factory.mktemp("ort") / "block.onnx")
    note = ort.export(model, (x,), path, ["x"])
    return model, x, path, note


def test_exported_model_computes_the_torch_model(exported):
    model, x, path, note = exported
    assert note.startswith("dynamo")
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(ort.Session(path, threads=1)(x), expected, rtol=1e-4, atol=1e-5)


def test_static_flow_is_calibrated_on_the_given_batches(exported, tmp_path):
    model, x, path, _ = exported
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(2, 3, 16, 16, generator=generator),) for _ in range(4)]
    quantized = str(tmp_path / "block_int8.onnx")
    ort.quantize_static(path, quantized, ort.feeds_of(["x"], batches), reduce_range=False)
    with torch.no_grad():
        expected = model(x)
    # int8 with ranges from inputs like x: far closer than a range calibrated on nothing
    assert sqnr(expected, ort.Session(quantized, threads=1)(x)) > 25


def test_dynamic_flow_quantizes_the_linear(exported, tmp_path):
    import onnx

    _, _, path, _ = exported
    quantized = str(tmp_path / "block_dynamic.onnx")
    ort.quantize_dynamic(path, quantized, per_channel=True)
    ops = {node.op_type for node in onnx.load(quantized).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "ConvInteger"}


def test_profile_counts_every_node_of_every_call(exported):
    _, x, path, _ = exported
    ops = layer_profile.ort_node_times(path, 1, lambda session: session(x), calls=5)
    assert {layer_profile.category(op) for op, _ in ops} >= {"conv"}
    assert all(len(runs) == 5 and min(runs) >= 0 for _, runs in ops)


@pytest.mark.parametrize("name, expected", [
    ("quantized::conv2d_add_relu", "conv + add"),
    ("onednn::qconv2d_pointwise", "conv"),
    ("QLinearConv", "conv"),
    ("QLinearAdd", "add (residual)"),
    ("QuantizeLinear", "quantize / dequantize"),
    ("DynamicQuantizeMatMul", "linear"),
    ("onednn::qlinear_pointwise", "linear"),
    ("aten::to", "quantize / dequantize"),
    ("aten::scaled_dot_product_attention", "attention"),
    ("qir::attention", "attention"),
    ("LayerNormalization", "layer norm"),
    ("aten::mul", "other elementwise"),
])
def test_layer_types(name, expected):
    assert layer_profile.category(name) == expected
