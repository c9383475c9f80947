"""Finding passes by name, without importing them until they run.

Built-in passes and third-party ones alike are entry points of the group
`qir.passes` (name → `module:Class`); `register_pass` adds one in-process, for
tests and notebooks. Nothing here imports torch, so `qir-opt --help` is fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from xdsl.passes import ModulePass

_LOCAL: dict[str, type[ModulePass]] = {}


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Make `cls` available by its `name` to PassManager and qir-opt (usable as a decorator)."""
    _LOCAL[cls.name] = cls
    return cls


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name → a loader returning the pass class."""
    passes: dict[str, Callable[[], type[ModulePass]]] = {
        ep.name: ep.load for ep in entry_points(group="qir.passes")
    }
    for name, cls in _LOCAL.items():
        passes[name] = lambda cls=cls: cls
    return dict(sorted(passes.items()))
