"""The backend contract (`qir.lowering.Backend`) and the registry that finds backends by name.

What is pinned: every part of a backend is given one way, as a value, and checked where the
backend is built; emission is handed over, never registered into the emitter; a backend's name
and its dialects' are not tied; each backend names its quantizers for `annotate{quantizer=...}`;
`lower-NAME` is one class per backend; and every name (backend, dialect, op, emission rule,
quantizer) has one owner, a second claim being an error naming both.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Dialect
from xdsl.irdl import irdl_op_definition, operand_def, result_def

import qir
from qir import registry
from qir.dialects.kernel import KernelOp
from qir.lowering import Backend, Emission, OpCapability, RegistryError, table


def _dialect(name: str, op: str = "copy") -> Dialect:
    """A one-op kernel dialect `name` (`name.copy(%x) : (T) -> T`)."""
    cls = irdl_op_definition(type(f"{name.title()}Copy", (KernelOp,), {
        "name": f"{name}.{op}", "input": operand_def(TensorType), "output": result_def(TensorType),
        "__module__": __name__}))
    return Dialect(name, [cls], [])


def _copy(em, op) -> None:
    em.bind(op, em.call(torch.ops.aten.clone.default, (em.node(op.input),), name=op.output.name_hint))


def _backend(name: str, dialect: Dialect | None = None, **kwargs) -> Backend:
    dialect = dialect or _dialect(name.replace("-", "_") + "k")
    return Backend(name=name, description="a test backend", capabilities=table(OpCapability("ref.matmul")),
                   dialects=(dialect,), emission=Emission({next(iter(dialect.operations)).name: _copy}), **kwargs)


@pytest.fixture
def registered():
    """Backends registered by a test, forgotten after it."""
    names: list[str] = []

    def register(backend: Backend) -> Backend:
        names.append(backend.name)
        return qir.register_backend(backend)

    yield register
    for name in names:
        registry.unregister_backend(name)


# -- one way to give each part, checked where the backend is built ----------------------------


def test_parts_are_values_checked_at_construction():
    dialect = _dialect("tk")
    capabilities = table(OpCapability("ref.matmul"))
    with pytest.raises(TypeError, match="Dialect values"):
        Backend(name="b", description="", capabilities=capabilities, dialects=(lambda: dialect,))
    with pytest.raises(TypeError, match="qir.lowering.Emission"):
        Backend(name="b", description="", capabilities=capabilities, dialects=(dialect,),
                emission={"tk.copy": _copy})
    with pytest.raises(TypeError, match=r"none of its dialects defines: \['tk.cpy'\]"):
        Backend(name="b", description="", capabilities=capabilities, dialects=(dialect,),
                emission=Emission({"tk.cpy": _copy}))
    with pytest.raises(TypeError, match="RewritePattern instances"):
        Backend(name="b", description="", capabilities=capabilities, patterns=(lambda: [],))
    with pytest.raises(ValueError, match="backend name"):
        Backend(name="lower me", description="", capabilities=capabilities)
    with pytest.raises(TypeError, match="factories"):
        Backend(name="b", description="", capabilities=capabilities, quantizers={"b": "not callable"})
    backend = Backend(name="b", description="", capabilities=capabilities, dialects=[dialect],
                      rules=["x.rules"], emission=Emission({"tk.copy": _copy}))
    assert backend.dialects == (dialect,) and backend.rules == (__import__("pathlib").Path("x.rules"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        backend.name = "c"  # type: ignore[misc]


def test_emission_table():
    emission = Emission()
    emission.rule("tk.copy")(_copy)
    with pytest.raises(ValueError, match="tk.copy has an emission rule already"):
        emission.rule("tk.copy")(lambda em, op: None)
    replacement = emission.rule("tk.copy", replace=True)(lambda em, op: None)
    assert emission["tk.copy"] is replacement and list(emission) == ["tk.copy"] and len(emission) == 1
    emission.fold("tk.copy")(lambda em, op, inputs: inputs[0])
    assert set(emission.folds) == {"tk.copy"}


def test_lower_pass_is_built_once():
    x86 = qir.get_backend("x86")
    assert x86.lower_pass() is x86.lower_pass()
    assert registry.available_passes()["lower-x86"]() is x86.lower_pass()
    assert x86.lower_pass().name == "lower-x86" and x86.lower_pass().__name__ == "LowerX86"
    other = dataclasses.replace(x86, name="x86-copy")
    assert other.lower_pass() is not x86.lower_pass() and other.lower_pass().name == "lower-x86-copy"
    assert other.lower_pass().__name__ == "LowerX86Copy"


def test_emission_is_handed_over_not_registered():
    """Lowering to x86 and onednn and emitting leaves the emitter's own table with qir's dialects
    only: the backends' rules come from the `Emission` each hands over."""
    from qir.context import QIR_DIALECTS
    from qir.emitter import _RULES

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    for backend in ("x86", "onednn"):
        low = qir.quantize(model, (x,), backend=backend)  # for this host: a VNNI program would not run without VNNI
        assert any(op.name.startswith(f"{backend}.") for op in low.qir_program.module.walk())
    assert {name.split(".")[0] for name in _RULES} <= set(QIR_DIALECTS)
    x86 = qir.get_backend("x86")
    assert set(x86.emission) == {op.name for op in x86.dialects[0].operations}


# -- quantizers by name -----------------------------------------------------------------------


def test_every_backend_names_its_quantizer():
    names = qir.available_quantizers()
    assert {"x86", "x86-qat", "xnnpack", "xnnpack-qat", "onednn", "qnnpack", "reference", "inductor"} <= set(names)
    from qir.passes.annotate import Annotate

    with pytest.raises(ValueError, match=r"unknown quantizer 'nope' \(available: .*onednn.*qnnpack"):
        Annotate(quantizer="nope")
    from qir.quantizer import X86Quantizer, quantizer_by_name

    assert isinstance(quantizer_by_name("x86"), X86Quantizer)  # qir's own X86 recipe
    onednn = quantizer_by_name("onednn", "x86-avx2")
    assert onednn.patterns == qir.get_backend("onednn").quantizer("x86-avx2").patterns and onednn.int16_pairs


def test_annotate_takes_a_backends_quantizer_by_name():
    """`annotate{quantizer=onednn}` annotates as `get_backend("onednn").quantizer()` does."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    program = qir.PassManager("canonicalize").run(qir.export(model, (torch.randn(2, 8),)))
    named = qir.PassManager("annotate{quantizer=onednn target=x86-avx512-vnni}").run(program)
    given = qir.PassManager([qir.registry.available_passes()["annotate"]()(
        quantizer=qir.get_backend("onednn").quantizer("x86-avx512-vnni"), target="x86-avx512-vnni")]).run(program)
    assert named.text() == given.text() and "qin" in named.text()


# -- a name has one owner ---------------------------------------------------------------------


def test_backend_and_dialect_names_are_not_tied(registered, tmp_path):
    """A backend `tiny` whose dialect is `tk`: IR naming `tk.copy` parses (the context finds the
    dialect through the registry), `lower-tiny` accepts its ops, and the emitter finds its rule."""
    registered(_backend("tiny", _dialect("tk")))
    text = """builtin.module attributes {qir.stage = "lowered", qir.backend = "tiny"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = tk.copy(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %y : tensor<2x3xf32>
  }
}
"""
    program = qir.parse(text)
    assert "tk.copy(%x)" in program.text()
    x = torch.randn(2, 3)
    assert torch.equal(program.to_fx()(x)[0], x)
    reference_stage = qir.parse(text.replace('"lowered", qir.backend = "tiny"', '"reference"'))
    lowered = qir.PassManager("lower-tiny").run(reference_stage)
    assert lowered.module.attributes["qir.backend"].data == "tiny"


def test_two_backends_cannot_claim_one_dialect(registered):
    registered(_backend("first", _dialect("shared")))
    with pytest.raises(RegistryError, match="backends 'first' and 'second' both bring a dialect 'shared'"):
        registered(_backend("second", _dialect("shared")))
    assert "second" not in registry.available_backends() and qir.get_backend("first").name == "first"


def test_two_backends_cannot_claim_one_op(registered):
    registered(_backend("first", _dialect("da", "op")))
    other = Dialect("db", list(_dialect("da", "op").operations), [])  # another class named `da.op`
    with pytest.raises(RegistryError, match="both bring an op 'da.op'"):
        registered(Backend(name="second", description="", capabilities=table(), dialects=(other,)))


def test_a_derived_backend_shares_its_parents_dialect_and_emission(registered):
    """Sharing is no conflict: the same dialect and rules under another backend (a stricter
    table), which lowers with the parent's rules and is emitted with the parent's emission."""
    x86 = qir.get_backend("x86")
    strict = registered(dataclasses.replace(x86, name="x86-strict", description="x86 without matmul",
                                            capabilities=dataclasses.replace(
                                                x86.capabilities, ops=tuple(c for c in x86.capabilities.ops
                                                                           if c.op != "ref.matmul"))))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    low = qir.quantize(model, (x,), backend="x86-strict")  # for this host
    assert low.qir_program.module.attributes["qir.backend"].data == "x86-strict"
    assert torch.equal(low(x), qir.quantize(model, (x,), backend="x86")(x))
    assert strict.emission is x86.emission


def test_quantizer_names_have_one_owner(registered):
    with pytest.raises(RegistryError, match="names a quantizer 'x86', which is one of qir's own"):
        registered(_backend("mine", quantizers={"x86": lambda target: None}))
    registered(_backend("first", quantizers={"fast": lambda target: None}))
    with pytest.raises(RegistryError, match="backends 'first' and 'second' both bring a quantizer 'fast'"):
        registered(_backend("second", quantizers={"fast": lambda target: None}))
    registered(_backend("third"))  # its quantizer is named `third`
    with pytest.raises(RegistryError, match="backends 'fourth' and 'third' both bring a quantizer 'third'"):
        registered(_backend("fourth", quantizers={"third": lambda target: None}))
    assert {"fast", "third"} <= set(qir.available_quantizers()) and "fourth" not in qir.available_quantizers()


def test_dialects_of_qir_are_reserved(registered):
    with pytest.raises(RegistryError, match="a dialect named 'ref', which is qir's own"):
        registered(Backend(name="mine", description="", capabilities=table(), dialects=(_dialect("ref", "mine"),)))


def test_installed_names_cannot_be_taken_and_local_ones_are_replaced(registered):
    with pytest.raises(RegistryError, match="backend 'x86' is installed already"):
        registered(_backend("x86"))
    first = registered(_backend("mine"))
    second = registered(_backend("mine", first.dialects[0]))
    assert qir.get_backend("mine") is second
    with pytest.raises(TypeError, match="takes a qir.lowering.Backend"):
        qir.register_backend(SimpleNamespace(name="duck", accepts=lambda *a: True))


def test_entry_points_must_give_what_they_promise(monkeypatch, tmp_path):
    module = tmp_path / "fake_backends.py"
    module.write_text("from qir.lowering import Backend, table\n"
                      "WRONG_NAME = Backend(name='other', description='', capabilities=table())\n"
                      "NOT_A_BACKEND = object()\n")
    (tmp_path / "broken_backend.py").write_text("raise ImportError('no kernels here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib.metadata import EntryPoint

    read_entry_points = registry._backend_entry_points.__wrapped__

    fakes = {"wrong-name": EntryPoint("wrong-name", "fake_backends:WRONG_NAME", "qir.backends"),
             "not-a-backend": EntryPoint("not-a-backend", "fake_backends:NOT_A_BACKEND", "qir.backends"),
             "broken": EntryPoint("broken", "broken_backend:BACKEND", "qir.backends")}
    monkeypatch.setattr(registry, "_backend_entry_points", lambda: fakes)
    with pytest.raises(RegistryError, match="gives a backend named 'other': name the entry point like the backend"):
        qir.get_backend("wrong-name")
    with pytest.raises(RegistryError, match="gives a object, not a qir.lowering.Backend"):
        qir.get_backend("not-a-backend")
    with pytest.raises(RegistryError, match="'broken' .*cannot be imported: ImportError: no kernels here"):
        qir.get_backend("broken")
    # Two distributions naming one backend; one distribution found twice is one.
    dist = lambda name: SimpleNamespace(name=name)  # noqa: E731
    twice = (SimpleNamespace(name="b", value="p:B", dist=dist("p")), SimpleNamespace(name="b", value="p:B", dist=dist("p")))
    monkeypatch.setattr(registry, "_entry_points", lambda group: twice)
    assert list(read_entry_points()) == ["b"]
    clash = (twice[0], SimpleNamespace(name="b", value="q:B", dist=dist("q")))
    monkeypatch.setattr(registry, "_entry_points", lambda group: clash)
    with pytest.raises(RegistryError, match="two installed packages name a backend 'b'"):
        read_entry_points()
