"""qir.debug: the per-op SQNR table finds the layer that breaks, its figures agree with an
independent computation (forward hooks on the float nn.Module, the converted module's own
quantize/dequantize nodes and torch's fake-quantize), and leaving the worst layer in float
raises the model's output SQNR."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

import qir
import qir.debug
from qir.quantizer import X86Quantizer

DEAD = 0  # conv1's output channel that the ReLU always zeroes


class Net(nn.Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace)
        self.conv2, self.relu2 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace)
        self.conv3, self.relu3 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu3(self.conv3(self.relu2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def _net(broken: bool, inplace: bool = False) -> Net:
    """`broken`: conv2 has outlier weights (50, where the others are ~0.1) on an input channel
    that is always zero. Float never sees them; per-channel int8 weights at scale 50/127 round
    every other weight of conv2 to zero."""
    torch.manual_seed(0)
    net = Net(inplace)
    with torch.no_grad():
        net.bn1.running_mean.uniform_(-0.2, 0.2)
        net.bn1.running_var.uniform_(0.5, 2.0)
        net.bn1.bias[DEAD] = -100.0
        if broken:
            net.conv2.weight[:, DEAD] = 50.0
    return net.eval()


def _batches(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(4, 3, 6, 6, generator=g) for _ in range(n)]


def _quantize(model, quantizer=None):
    x = _batches(1)[0]
    prepared = qir.prepare(model, (x,), quantizer or X86Quantizer())
    with torch.no_grad():
        for batch in _batches(4):
            prepared(batch)
    return qir.convert(prepared)


def _db(reference: torch.Tensor, actual: torch.Tensor) -> float:
    """SQNR written out independently: 20 log10(|ref| / |ref - actual|)."""
    ref, act = reference.detach().double(), actual.detach().double()
    return 20 * math.log10(ref.norm() / (ref - act).norm())


@pytest.fixture(scope="module")
def broken():
    model = _net(broken=True)
    return model, _quantize(model)


@pytest.fixture(scope="module")
def test_input():
    return torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(7))


def test_the_broken_layer_ranks_worst(broken, test_input):
    model, quantized = broken
    records = qir.debug.compare(model, quantized, (test_input,))
    worst = records[0]
    assert (worst.module, worst.op, worst.module_type) == ("conv2", "conv2d.default", "torch.nn.modules.conv.Conv2d")
    assert worst.local_sqnr < 10 < min(r.local_sqnr for r in records[1:])
    assert [r.local_sqnr for r in records] == sorted(r.local_sqnr for r in records)
    # every quantized op has a row; the folded BatchNorm's row is its convolution's
    assert sorted(r.module for r in records) == sorted(["conv1", "relu1", "conv2", "relu2", "conv3", "relu3",
                                                        "", "fc"])


def _float_outputs(model: Net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's float output through forward hooks; a folded conv's is its BatchNorm's."""
    outputs: dict[str, torch.Tensor] = {}
    for name in ("bn1", "relu1", "conv2", "relu2", "conv3", "relu3", "fc"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: outputs.setdefault(name, o.clone()))
    with torch.no_grad():
        model(x)
    outputs["conv1"] = outputs.pop("bn1")
    return outputs


def _quantized_outputs(gm: fx.GraphModule, x: torch.Tensor) -> tuple[dict, dict, fx.Interpreter]:
    """The converted module's op outputs as the next op sees them (after their own quantize →
    dequantize, if any), found in its FX graph by op and order, and each op's node."""
    interpreter = fx.Interpreter(gm, garbage_collect_values=False)
    with torch.no_grad():
        interpreter.run(x)
    layers = {torch.ops.aten.conv2d.default: ["conv1", "conv2", "conv3"],
              torch.ops.aten.relu.default: ["relu1", "relu2", "relu3"], torch.ops.aten.linear.default: ["fc"]}
    seen = {target: 0 for target in layers}
    values, nodes = {}, {}
    for node in gm.graph.nodes:
        if node.target not in layers:
            continue
        name = layers[node.target][seen[node.target]]
        seen[node.target] += 1
        out = node
        quantize = [u for u in node.users if u.target == torch.ops.quantized_decomposed.quantize_per_tensor.default]
        if quantize:
            (out,) = quantize[0].users
        values[name], nodes[name] = interpreter.env[out], node
    return values, nodes, interpreter


def test_sqnr_agrees_with_hooks_and_the_converted_module(broken, test_input):
    model, quantized = broken
    records = {r.module: r for r in qir.debug.compare(model, quantized, (test_input,))}
    expected = _float_outputs(_net(broken=True), test_input)
    actual, _, _ = _quantized_outputs(quantized, test_input)
    assert set(actual) == set(expected)
    for name in expected:
        assert records[name].sqnr == pytest.approx(_db(expected[name], actual[name]), abs=0.01), name
        error = float((expected[name] - actual[name]).abs().max())
        assert records[name].max_abs_error == pytest.approx(error, rel=1e-3, abs=1e-6), name
        assert records[name].numel == expected[name].numel()


def _qparams(node: fx.Node, interpreter: fx.Interpreter) -> tuple[float, int, int, int]:
    """(scale, zero point, qmin, qmax) of the quantize node behind a dequantized operand."""
    quantize = node.args[0]
    return tuple(interpreter.env.get(a, a) if isinstance(a, fx.Node) else a for a in quantize.args[1:5])


def test_local_sqnr_agrees_with_fake_quantize(broken, test_input):
    """conv2 alone: its float input fake-quantized with the input's parameters, convolved with
    the module's dequantized weights; relu2 alone: ReLU of float conv2, fake-quantized with its
    output's parameters."""
    model, quantized = broken
    records = {r.module: r for r in qir.debug.compare(model, quantized, (test_input,))}
    expected = _float_outputs(_net(broken=True), test_input)
    _, nodes, interpreter = _quantized_outputs(quantized, test_input)

    conv = nodes["conv2"]
    x_dq, w_dq, bias = conv.args[:3]
    scale, zero_point, qmin, qmax = _qparams(x_dq, interpreter)
    x = torch.fake_quantize_per_tensor_affine(expected["relu1"], scale, zero_point, qmin, qmax)
    weight = interpreter.env[w_dq]
    b = interpreter.env[bias] if isinstance(bias, fx.Node) else bias
    alone = F.conv2d(x, weight, b, padding=1)
    assert records["conv2"].local_sqnr == pytest.approx(_db(expected["conv2"], alone), abs=0.01)
    assert records["conv2"].local_sqnr < 5

    (quantize,) = nodes["relu2"].users
    (dequantize,) = quantize.users
    scale, zero_point, qmin, qmax = _qparams(dequantize, interpreter)
    alone = torch.fake_quantize_per_tensor_affine(torch.relu(expected["conv2"]), scale, zero_point, qmin, qmax)
    assert records["relu2"].local_sqnr == pytest.approx(_db(expected["relu2"], alone), abs=0.01)


def test_leaving_the_worst_layer_float_raises_the_output_sqnr(broken, test_input):
    model, quantized = broken
    worst = qir.debug.compare(model, quantized, (test_input,))[0]
    quantizer = X86Quantizer()
    quantizer.set_module_name(worst.module, None)
    fixed = _quantize(model, quantizer)
    with torch.no_grad():
        reference = model(test_input)
        before, after = _db(reference, quantized(test_input)), _db(reference, fixed(test_input))
    assert before < 10 and after > 30, (before, after)
    assert worst.module not in {r.module for r in qir.debug.compare(model, fixed, (test_input,))}


def test_in_place_relus_do_not_change_what_is_compared(test_input):
    """A conv followed by an in-place ReLU is compared before the ReLU wrote its output."""
    def table(inplace: bool):
        model = _net(broken=False, inplace=inplace)
        return {(r.module, r.op.replace("relu_", "relu")): (r.sqnr, r.local_sqnr)
                for r in qir.debug.compare(model, _quantize(model), (test_input,))}

    out_of_place, in_place = table(False), table(True)
    assert in_place.keys() == out_of_place.keys()
    for key, figures in out_of_place.items():
        assert in_place[key] == pytest.approx(figures, abs=1e-6), key


def test_a_model_left_all_in_float_has_no_rows(test_input):
    model = _net(broken=False)
    assert qir.debug.compare(model, _quantize(model, X86Quantizer().set_global(None)), (test_input,)) == []


def test_float_model_as_exported_program_or_program(broken, test_input):
    model, quantized = broken
    by_module = qir.debug.compare(model, quantized, test_input)  # one tensor is one input
    ep = torch.export.export(model, (test_input,))
    for float_model in (ep, qir.import_program(ep)):
        assert qir.debug.compare(float_model, quantized, (test_input,)) == by_module
    assert qir.debug.compare(model, quantized.qir_program, (test_input,)) == by_module


def test_names_are_the_printed_ones_and_records_render(broken, test_input):
    model, quantized = broken
    records = qir.debug.compare(model, quantized, (test_input,))
    text = str(quantized.qir_program)
    for r in records:
        assert f"%{r.name} = aten.op \"{r.op}\"" in text, r.name

    table = qir.debug.format_table(records, limit=3).splitlines()
    assert table[0].split() == ["local", "dB", "SQNR", "dB", "max", "|err|", "op", "module", "type", "value"]
    assert len(table) == 5 and table[-1] == f"... {len(records) - 3} more ops"
    assert table[1].split()[3:] == ["conv2d.default", "conv2", "Conv2d", f"%{records[0].name}"]
    assert "(top)" in qir.debug.format_table(records)  # flatten has no module

    dicts = json.loads(json.dumps(qir.debug.as_dicts(records), allow_nan=False))
    assert dicts[0] == {"name": records[0].name, "op": "conv2d.default", "module": "conv2",
                        "module_type": "torch.nn.modules.conv.Conv2d", "sqnr": records[0].sqnr,
                        "local_sqnr": records[0].local_sqnr, "max_abs_error": records[0].max_abs_error,
                        "numel": records[0].numel}


def test_sqnr_edge_cases():
    x = torch.tensor([1.0, -2.0])
    assert qir.debug.sqnr(x, x) == math.inf
    assert qir.debug.sqnr(torch.zeros(2), x) == -math.inf
    assert qir.debug.sqnr(x, torch.tensor([1.0, math.nan])) == -math.inf
    assert qir.debug.sqnr(x, x * 1.1) == pytest.approx(20.0)
    masked = torch.tensor([-math.inf, 1.0, -2.0])  # a masked attention score: -inf on both sides
    assert qir.debug.sqnr(masked, torch.tensor([-math.inf, 1.1, -2.2])) == pytest.approx(20.0)
    assert qir.debug.sqnr(masked, torch.tensor([-3.0, 1.1, -2.2])) == -math.inf
    exact = qir.debug.LayerRecord("v", "relu.default", "", "", math.inf, math.nan, 0.0, 2)
    assert exact.as_dict()["sqnr"] == "inf" and exact.as_dict()["local_sqnr"] == "nan"


def test_what_compare_refuses(broken, test_input):
    model, quantized = broken
    with pytest.raises(qir.QirError, match="stage 'lowered': a fused kernel does not say"):
        qir.debug.compare(model, qir.lower(quantized, "x86"), (test_input,))
    with pytest.raises(qir.QirError, match="expects what qir.convert returns"):
        qir.debug.compare(model, model, (test_input,))
    other = nn.Sequential(nn.Linear(6, 6)).eval()
    with pytest.raises(qir.QirError, match="no quantized op .* matches .*quantized from"):
        qir.debug.compare(other, quantized, (test_input,))
    with pytest.raises(qir.QirError, match="needs the float model, got a program at stage 'quantized'"):
        qir.debug.compare(quantized.qir_program, quantized, (test_input,))


class _Keyed(nn.Module):
    """Called with keyword inputs, as Hugging Face models are (`model(input_ids=..., mask=...)`)."""

    def __init__(self):
        super().__init__()
        self.net = _net(broken=True)

    def forward(self, x, *, offset=None, scale=None):
        return self.net(x * scale + offset)


def test_compare_takes_keyword_inputs_in_any_order():
    """A model exported with keyword inputs is compared on keyword inputs (the broken conv2 comes
    first), with the same records whatever the keywords' order; inputs that do not fit the
    program's signature are an error saying so."""
    x = _batches(1)[0]
    extra = {"offset": torch.full((1, 3, 1, 1), 0.5), "scale": torch.full((1, 3, 1, 1), 2.0)}
    model = _Keyed().eval()
    prepared = qir.prepare(model, (x,), X86Quantizer(), kwargs=extra)
    for batch in _batches(4):
        prepared(batch, **extra)
    quantized = qir.convert(prepared)
    records = qir.debug.compare(model, quantized, (x,), kwargs=extra)
    assert records[0].module == "net.conv2" and records[0].local_sqnr < 10
    again = qir.debug.compare(model, quantized, (x,), kwargs=dict(reversed(extra.items())))
    assert [(r.name, r.local_sqnr, r.sqnr) for r in again] == [(r.name, r.local_sqnr, r.sqnr) for r in records]
    assert {"net.conv1", "net.conv3", "net.fc"} <= {r.module for r in records}
    exported = torch.export.export(model, (x,), extra)
    assert [r.name for r in qir.debug.compare(exported, quantized, (x,), kwargs=extra)] == [r.name for r in records]
    with pytest.raises(qir.errors.QirError, match="do not fit the program's signature"):
        qir.debug.compare(exported, quantized, (x,), kwargs={"offset": extra["offset"]})
