"""The `reference` backend: `ref` ops run as integer ATen arithmetic, anywhere.

Its kernels are the `ref` ops themselves, emitted as the reference quantized
representation (`qir.emit_ref`: int8 storage, exact integer accumulation,
requantization with round half to even), so it needs no rules: lowering only
checks and records the target. It accepts every `ref` op in every storage type
the dialect allows; it is the bit-exact emulation every other backend is
checked against.
"""

from __future__ import annotations

from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table

_STORAGES = ("u8", "i8", "u16", "i16")
_ANY = dict(activations=_STORAGES, weights=("i8", "u8", "i16"), posts=(None, "relu", "hardtanh"),
            spatial=(1, 2, 3), float_output=True)

CAPABILITIES = table(
    OpCapability("ref.conv", transposed=True, **_ANY),
    *(OpCapability(name, **_ANY) for name in (
        "ref.conv_add", "ref.linear", "ref.matmul", "ref.add", "ref.mul", "ref.cat", "ref.requantize",
        "ref.avg_pool", "ref.adaptive_avg_pool", "ref.lookup")),
)

BACKEND = Backend(
    name="reference",
    description="the reference quantized representation (integer ATen arithmetic)",
    capabilities=CAPABILITIES,
    leftovers=lambda op: True,
)
