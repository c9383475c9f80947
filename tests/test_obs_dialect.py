"""The `obs` dialect's spec attributes: regrouping a spec (what propagation does to thousands
of them) keeps every other parameter, as the same attributes."""

from __future__ import annotations

import pytest

from qir.dialects.obs import FixedQParamsAttr, QuantSpecAttr

SPECS = [
    QuantSpecAttr("u8", 0, 255, "affine", "histogram", int16_pairs=3),
    QuantSpecAttr("i8", -127, 127, "symmetric", "per_channel_minmax", axis=0),
    QuantSpecAttr("u4", 0, 15, "affine", "per_group_minmax", axis=0, block=32),
    QuantSpecAttr("u8", 0, 255, dynamic=True, per_token=True),
    FixedQParamsAttr("u8", 0, 255, 1 / 256, 0),
]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_with_group_changes_the_group_alone(spec):
    grouped = spec.with_group(4)
    assert grouped.group_id == 4 and str(grouped) == str(spec)[:-1] + ", group 4>"
    names = [name for name, _ in type(spec).get_irdl_definition().parameters]
    for name, before, after in zip(names, spec.parameters, grouped.parameters, strict=True):
        assert (before is after) == (name != "group")  # the other parameters are shared
    assert grouped.with_group(None) == spec and hash(grouped.with_group(None)) == hash(spec)
    assert grouped.with_group(4) is grouped

