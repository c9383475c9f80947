"""The test model zoo itself: every entry exports and the export is exact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).parent))  # harmless if conftest already did it
from zoo.models import ZOO, ZooEntry  # noqa: E402


def _same(a, b) -> bool:
    la, sa = tree_flatten(a)
    lb, sb = tree_flatten(b)
    return sa == sb and len(la) == len(lb) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(la, lb)
    )


@pytest.fixture(scope="module", params=sorted(ZOO))
def exported(request):
    entry: ZooEntry = ZOO[request.param]
    model = entry.make_model()
    args, kwargs = entry.make_inputs()
    ep = torch.export.export(model, args, kwargs, dynamic_shapes=entry.dynamic_shapes)
    return entry, model, ep


def test_entry_is_well_formed():
    assert len(ZOO) >= 9
    for name, entry in ZOO.items():
        assert entry.name == name
        model = entry.make_model()
        assert isinstance(model, torch.nn.Module) and not model.training
        args, kwargs = entry.make_inputs()
        assert isinstance(args, tuple) and isinstance(kwargs, dict)
        assert entry.kwargs_inputs == bool(kwargs)


def test_factories_are_deterministic():
    for entry in ZOO.values():
        s1, s2 = entry.make_model().state_dict(), entry.make_model().state_dict()
        assert s1.keys() == s2.keys()
        assert all(torch.equal(s1[k], s2[k]) for k in s1)
        assert _same(entry.make_inputs(), entry.make_inputs())


def test_batchnorm_stats_are_nontrivial():
    for entry in ZOO.values():
        for m in entry.make_model().modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                assert m.running_mean.abs().max() > 0.01
                assert (m.running_var - 1).abs().max() > 0.01


def test_export_is_exact(exported):
    entry, model, ep = exported
    args, kwargs = entry.make_inputs()
    with torch.no_grad():
        assert _same(model(*args, **kwargs), ep.module()(*args, **kwargs))


_DYNAMIC = sorted(n for n, e in ZOO.items() if e.dynamic_shapes is not None)


def test_zoo_has_a_dynamic_entry():
    assert _DYNAMIC


@pytest.mark.parametrize("name", _DYNAMIC)
def test_dynamic_batch(name):
    entry = ZOO[name]
    model = entry.make_model()
    args, kwargs = entry.make_inputs()
    ep = torch.export.export(model, args, kwargs, dynamic_shapes=entry.dynamic_shapes)
    assert ep.range_constraints, "no symbolic dimension was kept"
    for batch in (1, 5, 64):
        args, kwargs = entry.make_inputs(batch=batch)
        assert args[0].shape[0] == batch
        with torch.no_grad():
            assert _same(model(*args, **kwargs), ep.module()(*args, **kwargs))
