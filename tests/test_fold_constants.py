"""fold-constants through torch: weights the forward computes from parameters become weights.

Weight normalization (the parametrization torch ships, as wav2vec2's positional conv
uses it), a transposed and scaled weight, and a shared table sliced in forward: once
folded, the quantizers see ordinary weights and the layers run as int8 kernels, and the
folded tensors are bit for bit what the float model computes.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import qir
from helpers import INT8_BACKENDS
from peers import sqnr
from qir.registry import get_backend


class _ComputedWeights(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = weight_norm(nn.Linear(16, 16))
        self.conv = weight_norm(nn.Conv1d(16, 8, 3, padding=1))
        self.w = nn.Parameter(torch.randn(8, 16) * 0.2)
        self.b = nn.Parameter(torch.randn(8) * 0.1)

    def forward(self, x):
        y = torch.relu(self.fc(x))
        z = torch.nn.functional.linear(y, self.w.t().t() * 0.5, self.b)  # a weight computed from two ops
        return self.conv(y.transpose(1, 2)), z


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(seed))


def test_computed_weights_fold_to_the_float_models_own_values():
    model = _ComputedWeights().eval()
    program = qir.import_program(torch.export.export(model, (_x(),)))
    before = program.text()
    folded = qir.PassManager(["canonicalize", "fold-constants"]).run(program)
    assert program.text() == before  # the input program is left as it was
    weights = {name: folded.params[name] for name in folded.param_names()}
    expected = {"fc": model.fc.weight, "conv": model.conv.weight, "w": model.w * 0.5}
    for prefix, tensor in expected.items():
        (name,) = [n for n in weights if n.startswith(prefix) and weights[n].shape == tensor.shape
                   and not n.endswith(("original0", "original1"))]
        assert torch.equal(weights[name], tensor.detach()), name
    with torch.no_grad():
        for got, want in zip(folded.to_fx()(_x(1)), model(_x(1))):
            assert torch.equal(got, want)


@pytest.mark.parametrize("backend", INT8_BACKENDS)
def test_layers_with_computed_weights_run_quantized(backend):
    model = _ComputedWeights().eval()
    lowered = qir.quantize(model, (_x(),), calibration=[(_x(s),) for s in range(4)], backend=backend)
    text = lowered.qir_program.text()
    assert 'aten.op "_weight_norm' not in text and 'aten.op "mul.Tensor"' not in text
    # The three weights are stored quantized (QNNPACK runs the float-output linear as Q/DQ).
    assert not re.findall(r'aten\.param parameter "[^"]*(?:_weight_norm|mul)[^"]*" : tensor<[0-9x]*xf32>', text)
    assert len(re.findall(r'aten\.param parameter "[^"]*(?:_weight_norm|mul)[^"]*" : tensor<[0-9x]*!quant', text)) == 3
    with torch.no_grad():
        for got, want in zip(lowered(_x(9)), model(_x(9))):
            assert sqnr(want, got) > 30, sqnr(want, got)


class _TokenTypes(torch.nn.Module):
    """BERT's embeddings: token types from a buffer, sliced and expanded to the batch."""

    def __init__(self):
        super().__init__()
        self.register_buffer("token_type_ids", torch.zeros(1, 32, dtype=torch.long))
        self.token_type = torch.nn.Embedding(2, 8)
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        batch, length = x.shape[:2]
        types = self.token_type_ids[:, :length].expand(batch, length)
        return self.fc(x + self.token_type(types))


def test_folding_never_fixes_a_dimension_the_program_leaves_free():
    model = _TokenTypes().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    prepared = qir.prepare(model, (torch.randn(16, 32, 8),), dynamic_shapes=({0: batch},))
    for _ in range(2):
        prepared(torch.randn(4, 32, 8))  # calibrated with another batch size than prepared with
    quantized = qir.convert(prepared)
    x = torch.randn(4, 32, 8)
    with torch.no_grad():
        assert sqnr(model(x), quantized(x)) > 30
    static = qir.prepare(model, (torch.randn(16, 32, 8),))
    with pytest.raises(qir.QirError, match="dimension 0 is 4, the program expects 16"):
        static(torch.randn(4, 32, 8))
