"""Finding passes and backends by name, without importing them until they run.

Built-in passes and third-party ones alike are entry points of the group
`qir.passes` (name → `module:Class`); backends are entry points of the group
`qir.backends` (name → `module:OBJECT`, a `qir.lowering.Backend`), and each
backend brings its lowering pass, `lower-<name>`. `register_pass` and
`register_backend` add one in-process, for tests and notebooks. Nothing here
imports torch, so `qir-opt --help` is fast.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from xdsl.passes import ModulePass

_LOCAL: dict[str, type[ModulePass]] = {}
_LOCAL_BACKENDS: dict[str, Any] = {}
_LOADED_BACKENDS: dict[str, Any] = {}


@cache
def _entry_points(group: str) -> tuple[EntryPoint, ...]:
    """The installed entry points of `group` (read once: installing a package restarts Python)."""
    return tuple(entry_points(group=group))


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Make `cls` available by its `name` to PassManager and qir-opt (usable as a decorator)."""
    _LOCAL[cls.name] = cls
    return cls


def register_backend(backend: Any) -> Any:
    """Make `backend` (a `qir.lowering.Backend`) available by its `name`, with its `lower-<name>` pass.

    Its rule files are compiled now, so that an error in them (at `file:line:col`) is reported
    where the backend is registered, not at its first use."""
    if getattr(backend, "rules", None):
        backend.ruleset  # noqa: B018 - compiled (and cached) for its errors
    _LOCAL_BACKENDS[backend.name] = backend
    _LOADED_BACKENDS.pop(backend.name, None)
    return backend


def available_backends() -> dict[str, Callable[[], Any]]:
    """Backend name → a loader returning the backend."""
    backends: dict[str, Callable[[], Any]] = {ep.name: ep.load for ep in _entry_points("qir.backends")}
    for name, backend in _LOCAL_BACKENDS.items():
        backends[name] = lambda backend=backend: backend
    return dict(sorted(backends.items()))


def get_backend(name: str) -> Any:
    """The backend registered as `name`; a `KeyError` listing the known ones otherwise."""
    backend = _LOADED_BACKENDS.get(name)
    if backend is None:
        loaders = available_backends()
        if name not in loaders:
            raise KeyError(f"unknown backend {name!r} (backends: {', '.join(loaders) or 'none'})")
        backend = _LOADED_BACKENDS[name] = loaders[name]()
    return backend


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name → a loader returning the pass class (`lower-<backend>` included)."""
    passes: dict[str, Callable[[], type[ModulePass]]] = {
        ep.name: ep.load for ep in _entry_points("qir.passes")
    }
    for name in available_backends():
        passes[f"lower-{name}"] = lambda name=name: get_backend(name).lower_pass()
    for name, cls in _LOCAL.items():
        passes[name] = lambda cls=cls: cls
    return dict(sorted(passes.items()))
