"""Finding passes, backends and quantizers by name, without importing them until they run.

Built-in passes and third-party ones alike are entry points of the group
`qir.passes` (name → `module:Class`); backends are entry points of the group
`qir.backends` (name → `module:OBJECT`, a `qir.lowering.Backend`). Each backend
brings its lowering pass (`lower-<name>`), its dialects, its emission and its
quantizers (`annotate{quantizer=...}`); `register_pass` and `register_backend` add
one in-process, for tests and notebooks.

Every name has one owner. Two installed packages naming one backend, a registration
under an installed backend's name, two backends bringing different dialects (or ops,
or emission rules) under one name, a backend dialect named like one of qir's own,
and two quantizers under one name are `RegistryError`s naming both claimants.

Nothing here imports torch, so `qir-opt --help` is fast; a backend is imported the
first time it is used, and every backend when a name only some backend can own
(a dialect's, an op's, a quantizer's) is looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from xdsl.passes import ModulePass

from qir.errors import QirError

if TYPE_CHECKING:
    from xdsl.ir import Dialect

    from qir.emitter import Emission
    from qir.lowering.backend import Backend

_LOCAL: dict[str, type[ModulePass]] = {}
_LOCAL_BACKENDS: dict[str, Backend] = {}
_LOADED_BACKENDS: dict[str, Backend] = {}


class RegistryError(QirError):
    """Two claims on one name (a backend's, a dialect's, an op's, a quantizer's), or an entry point
    that does not give what it promises."""


@cache
def _entry_points(group: str) -> tuple[EntryPoint, ...]:
    """The installed entry points of `group` (read once: installing a package restarts Python)."""
    return tuple(entry_points(group=group))


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{ep.value} (package {dist.name})" if dist is not None else ep.value


@cache
def _backend_entry_points() -> dict[str, EntryPoint]:
    """Installed backends by name. One distribution found twice (an editable install seen from
    its source tree) counts once; two distributions naming one backend are an error."""
    found: dict[str, EntryPoint] = {}
    for ep in _entry_points("qir.backends"):
        other = found.get(ep.name)
        if other is not None and (getattr(other, "dist", None) and getattr(ep, "dist", None)
                                  and other.dist.name != ep.dist.name):
            raise RegistryError(f"two installed packages name a backend {ep.name!r}: {_where(other)} and "
                                f"{_where(ep)}")
        found.setdefault(ep.name, ep)
    return found


# -- passes -----------------------------------------------------------------------------------


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    """Make `cls` available by its `name` to PassManager and qir-opt (usable as a decorator)."""
    _LOCAL[cls.name] = cls
    return cls


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


# -- backends ---------------------------------------------------------------------------------


def register_backend(backend: Backend) -> Backend:
    """Make `backend` (a `qir.lowering.Backend`) available by its `name` in this process, with its
    `lower-<name>` pass, its dialects, emission and quantizers; returns it.

    An installed backend's name cannot be taken; registering another backend under a name
    registered in this process replaces that one (a notebook cell run again). Its rule files
    are compiled now, so that an error in them (at `file:line:col`) is reported where the
    backend is registered, and its names are checked against every other backend's."""
    from qir.lowering.backend import Backend

    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend takes a qir.lowering.Backend, not {type(backend).__name__}")
    installed = _backend_entry_points().get(backend.name)
    if installed is not None:
        raise RegistryError(f"backend {backend.name!r} is installed already ({_where(installed)}): register "
                            "yours under another name")
    if backend.rules:
        backend.ruleset  # noqa: B018 - compiled (and cached) for its errors
    previous = _LOCAL_BACKENDS.get(backend.name)
    _LOCAL_BACKENDS[backend.name] = backend
    _LOADED_BACKENDS.pop(backend.name, None)
    try:
        _claims()
    except Exception:
        if previous is None:
            _LOCAL_BACKENDS.pop(backend.name)
        else:
            _LOCAL_BACKENDS[backend.name] = previous
        raise
    return backend


def unregister_backend(name: str) -> None:
    """Forget a backend `register_backend` registered in this process (installed ones stay)."""
    _LOCAL_BACKENDS.pop(name, None)
    _LOADED_BACKENDS.pop(name, None)


def available_backends() -> dict[str, Callable[[], Any]]:
    """Backend name → a loader returning the backend (nothing is imported)."""
    backends: dict[str, Callable[[], Any]] = {name: (lambda name=name: get_backend(name))
                                              for name in _backend_entry_points()}
    for name in _LOCAL_BACKENDS:
        backends[name] = lambda name=name: get_backend(name)
    return dict(sorted(backends.items()))


def get_backend(name: str) -> Backend:
    """The backend registered as `name`; a `KeyError` listing the known ones otherwise."""
    backend = _LOADED_BACKENDS.get(name)
    if backend is not None:
        return backend
    if name in _LOCAL_BACKENDS:
        backend = _LOCAL_BACKENDS[name]
    else:
        ep = _backend_entry_points().get(name)
        if ep is None:
            raise KeyError(f"unknown backend {name!r} (backends: {', '.join(available_backends()) or 'none'})")
        from qir.lowering.backend import Backend

        try:
            backend = ep.load()
        except Exception as err:  # an installed backend that cannot be imported is named, not anonymous
            raise RegistryError(f"the backend {name!r} ({_where(ep)}) cannot be imported: "
                                f"{type(err).__name__}: {err}") from err
        if not isinstance(backend, Backend):
            raise RegistryError(f"the qir.backends entry point {name!r} = {_where(ep)} gives a "
                                f"{type(backend).__name__}, not a qir.lowering.Backend")
        if backend.name != name:
            raise RegistryError(f"the qir.backends entry point {name!r} = {_where(ep)} gives a backend named "
                                f"{backend.name!r}: name the entry point like the backend")
    _LOADED_BACKENDS[name] = backend
    return backend


# -- what the backends claim ------------------------------------------------------------------


@dataclass
class _Claims:
    """Every name the backends own, each with its one owner."""

    dialects: dict[str, tuple[Dialect, str]] = field(default_factory=dict)
    ops: dict[str, tuple[type, str]] = field(default_factory=dict)
    emission: dict[str, tuple[Any, str]] = field(default_factory=dict)
    quantizers: dict[str, tuple[Callable[..., Any], str]] = field(default_factory=dict)

    def add(self, backend: Backend, reserved_dialects, builtin_quantizers) -> None:
        name = backend.name
        for dialect in backend.dialects:
            if dialect.name in reserved_dialects:
                raise RegistryError(f"backend {name!r} brings a dialect named {dialect.name!r}, which is qir's own")
            self._claim(self.dialects, "a dialect", dialect.name, dialect, name)
            for op in dialect.operations:
                self._claim(self.ops, "an op", op.name, op, name)
        for op_name, rule in backend.emission.items():
            self._claim(self.emission, "an emission rule for", op_name, rule, name)
        for quantizer in backend.named_quantizers():
            if quantizer in builtin_quantizers:
                raise RegistryError(f"backend {name!r} names a quantizer {quantizer!r}, which is one of qir's own "
                                    "(qir.quantizer.QUANTIZERS): choose another name")
        for quantizer, factory in backend.named_quantizers().items():
            self._claim(self.quantizers, "a quantizer", quantizer, factory, name)

    @staticmethod
    def _claim(table: dict, what: str, key: str, value: Any, backend: str) -> None:
        owner = table.get(key)
        if owner is not None and owner[0] is not value:
            raise RegistryError(f"backends {owner[1]!r} and {backend!r} both bring {what} {key!r}: a name has one "
                                "owner (share the same object, or rename one)")
        table.setdefault(key, (value, backend))


_CLAIMS: list[Any] = [None, None]  # [key, _Claims]


def _claims() -> _Claims:
    """What every backend claims, every backend loaded (once per set of registrations)."""
    key = (tuple(_backend_entry_points()), tuple((name, id(b)) for name, b in _LOCAL_BACKENDS.items()))
    if _CLAIMS[0] == key:
        return _CLAIMS[1]
    from qir.context import QIR_DIALECTS
    from qir.quantizer import QUANTIZERS

    claims = _Claims()
    for name in available_backends():
        claims.add(get_backend(name), QIR_DIALECTS, QUANTIZERS)
    _CLAIMS[:] = [key, claims]
    return claims


def backend_dialects() -> dict[str, Dialect]:
    """Every backend's dialects, by dialect name."""
    return {name: dialect for name, (dialect, _) in _claims().dialects.items()}


def backend_emission(op_name: str, backend: str | None = None) -> Emission:
    """The emission table holding `op_name`: the one of `backend` (a lowered program's) if it
    does, else the one of the backend whose dialect defines the op (an empty table if none)."""
    from qir.emitter import Emission

    if backend is not None:
        try:
            emission = get_backend(backend).emission
        except KeyError:
            emission = None
        if emission is not None and (op_name in emission or op_name in emission.folds):
            return emission
    owner = _claims().ops.get(op_name)
    return get_backend(owner[1]).emission if owner is not None else Emission()


# -- quantizers -------------------------------------------------------------------------------


def available_quantizers() -> list[str]:
    """Every quantizer name `annotate{quantizer=NAME}` takes: qir's own (in their order), then
    the backends' (sorted)."""
    from qir.quantizer import QUANTIZERS

    return [*QUANTIZERS, *sorted(set(_claims().quantizers) - set(QUANTIZERS))]


def get_quantizer(name: str, target=None):
    """A new quantizer `name` (qir's own or a backend's), for `target` (a `qir.target` name or
    Target; the host by default)."""
    from qir.quantizer import QUANTIZERS, quantizer_by_name

    if name in QUANTIZERS:
        return quantizer_by_name(name, target)
    owner = _claims().quantizers.get(name)
    if owner is None:
        raise ValueError(f"unknown quantizer {name!r} (available: {', '.join(available_quantizers())})")
    from qir.target import parse_target

    return owner[0](parse_target(target))
