"""Weight-only quantization (issue 13): float16, int8 per channel and int4 group-wise weights,
embedding tables per row; activations stay float.

Numerics are checked against independent references (the float model, torch's own
`quantized_decomposed` ops, exact float64 arithmetic on the integer storage), never against
wall-clock time, and on both kinds of CPU (the kernels' test also runs as an AVX2 host).
"""

from __future__ import annotations

import array

import pytest
import torch
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from qir.context import make_context
from qir.dialects.quant import UniformQuantizedSubChannelType


# --------------------------------------------------------------------------
# The sub-channel type
# --------------------------------------------------------------------------


def _parse_type(text: str):
    return Parser(make_context(), text).parse_attribute()


def test_subchannel_type_prints_mlir_syntax_and_round_trips():
    t = UniformQuantizedSubChannelType.get("u4", [0.02, 0.03, 0.01, 0.04], [8, 7, 8, 0], [2, 2], {0: 1, 1: 32})
    text = "!quant.uniform<u4:f32:{0:1, 1:32}, {{2.000000e-02:8, 3.000000e-02:7}, {1.000000e-02:8, 4.000000e-02}}>"
    assert str(t) == text
    assert _parse_type(text) == t
    assert t.scale_table_shape == (2, 2) and t.block_sizes == {0: 1, 1: 32}
    assert t.scales == (0.02, 0.03, 0.01, 0.04) and t.zero_points == (8, 7, 8, 0)
    assert t.block_shape((2, 64)) == (1, 32)
    assert t.container_dtype_name == "uint8" and t.storage_dtype_name == "uint4"


def test_subchannel_type_from_bytes_is_the_same_type():
    scales = torch.tensor([[0.5, 0.25], [1.0, 2.0]], dtype=torch.float64)
    zeros = torch.tensor([[0, -1], [3, -8]], dtype=torch.int64)
    a = UniformQuantizedSubChannelType.get("i4", scales.numpy().tobytes(), zeros.numpy().tobytes(), [2, 2], {0: 1, 1: 16})
    b = UniformQuantizedSubChannelType.get("i4", scales.flatten().tolist(), zeros.flatten().tolist(), [2, 2], {0: 1, 1: 16})
    assert a == b and hash(a) == hash(b)
    assert list(array.array("d", a.scales_bytes)) == scales.flatten().tolist()


def test_subchannel_scale_keeps_every_digit():
    scale = 0.1 + 2 ** -40
    t = UniformQuantizedSubChannelType.get("u4", [scale], [3], [1, 1], {0: 1, 1: 8})
    assert _parse_type(str(t)).scales == (scale,)


@pytest.mark.parametrize(("scales", "zeros", "message"), [
    ([float("nan")], [0], "positive and finite"),
    ([0.0], [0], "positive and finite"),
    ([0.1], [16], "outside the storage range"),
])
def test_subchannel_type_verifies_its_table(scales, zeros, message):
    with pytest.raises(VerifyException, match=message):
        UniformQuantizedSubChannelType.get("u4", scales, zeros, [1, 1], {0: 1, 1: 8})
