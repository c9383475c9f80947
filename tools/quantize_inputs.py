"""What qir-quantize reads: the model MODEL names and its calibration batches.

MODEL is a built-in example, a `.pt2` saved by `torch.export.save` or a `.mlir` qir wrote;
calibration batches come from a `torch.save` file, checked against the program's input types
before anything runs, or are random batches shaped like the example inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from qir.tools.input_files import InputError, decode_ir, load_pt2
from qir.tools.messages import one_line


# -- the model --------------------------------------------------------------------------------


@dataclass
class Model:
    """What MODEL names: its program as loaded, and example inputs if the source has them."""

    name: str
    kind: str
    """"example", "pt2" or "mlir"."""
    description: str
    program: Any
    example: tuple | None


def load_model(spec: str) -> Model:
    from qir.examples import EXAMPLES

    if spec.endswith(".pt2"):
        return _load_pt2(spec)
    if spec.endswith(".mlir"):
        return Model(spec, "mlir", "IR text", _load_mlir(spec), None)
    if spec in EXAMPLES:
        import qir

        example = EXAMPLES[spec]
        inputs = example.inputs(1)
        return Model(spec, "example", example.description, qir.export(example.build(), inputs), inputs)
    if os.path.exists(spec):
        raise InputError(f"{spec}: not a model qir-quantize reads (a .pt2 or .mlir file, or a built-in example)")
    raise InputError(f"{spec!r} is neither a file nor a built-in example ({', '.join(EXAMPLES)})")


def _load_pt2(path: str) -> Model:
    import qir

    ep = load_pt2(path)
    example = None
    if ep.example_inputs:
        args, kwargs = ep.example_inputs
        if kwargs:
            raise InputError(f"{path}: the program takes keyword inputs ({', '.join(kwargs)}); qir-quantize "
                             "calibrates with positional ones only")
        example = tuple(args)
    program = qir.import_program(ep)
    return Model(path, "pt2", "a torch.export program", program, example)


def _load_mlir(path: str):
    """The program in `path` (weights beside it), or a located one-line reason why not."""
    from qir.errors import ParseFailure, QirError
    from qir.params import ParamStore, weights_path
    from qir.program import parse

    with open(path, "rb") as f:
        text = decode_ir(f.read(), path)
    wpath = weights_path(path)
    params = ParamStore()
    if wpath.exists():
        try:
            params = ParamStore.load(wpath)
        except OSError:
            raise
        except Exception as err:  # noqa: BLE001 - safetensors' own errors: a truncated or foreign file
            raise QirError(f"{wpath}: cannot read weights: {one_line(str(err))}") from None
    program = parse(text, params, path)
    try:
        program.forward  # noqa: B018 - the model is @forward
    except ValueError as err:
        raise ParseFailure(path, 1, 1, str(err)) from None
    return program


def _input_types(program) -> list:
    return [arg.type for arg in program.forward.body.block.args]


# -- calibration data -------------------------------------------------------------------------


def load_calibration(path: str, program, limit: int | None) -> list[tuple]:
    """The batches in `path`, each checked against the program's input types."""
    import torch

    if not os.path.exists(path):
        raise InputError(f"{path}: No such file or directory")
    try:
        data = torch.load(path, weights_only=True)  # tensors and containers only: no code runs
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to deserialize is the file's
        raise InputError(f"{path}: cannot read calibration data saved with torch.save: {one_line(str(err))}") \
            from None
    if not isinstance(data, list | tuple) or not data:
        raise InputError(f"{path}: expected a non-empty list of input tuples (or of tensors), "
                         f"got {_describe(data)}")
    types = _input_types(program)
    batches = []
    for i, batch in enumerate(data[:limit]):
        batch = tuple(batch) if isinstance(batch, list | tuple) else (batch,)
        if len(batch) != len(types):
            raise InputError(f"{path}: batch {i} has {len(batch)} inputs, the model takes {len(types)}")
        for j, (value, type_) in enumerate(zip(batch, types)):
            problem = _mismatch(value, type_)
            if problem:
                raise InputError(f"{path}: batch {i}, input {j}: {problem}")
        batches.append(batch)
    return batches


def _mismatch(value: Any, type_) -> str | None:
    import torch
    from xdsl.dialects.builtin import TensorType

    from qir.tensors import tensor_matches_type

    if isinstance(type_, TensorType):
        if not isinstance(value, torch.Tensor):
            return f"expected a tensor ({type_}), got {_describe(value)}"
        return tensor_matches_type(value, type_)
    if not isinstance(value, bool | int | float):
        return f"expected a number ({type_}), got {_describe(value)}"
    return None


def _describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def random_batches(model: Model, n: int, first_seed: int = 0) -> list[tuple]:
    return [random_batch(model, seed) for seed in range(first_seed, first_seed + n)]


def random_batch(model: Model, seed: int) -> tuple:
    """A seeded random batch: floating inputs drawn like the example's, others kept as the
    example has them (token ids, masks). Without example values (IR text), integer inputs are
    ones, and dynamic dimensions cannot be guessed."""
    import torch
    from xdsl.dialects.builtin import DYNAMIC_INDEX, TensorType

    from qir.tensors import torch_dtype

    generator = torch.Generator().manual_seed(seed)
    if model.example is not None:
        return tuple(torch.randn(t.shape, generator=generator, dtype=t.dtype)
                     if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in model.example)
    batch = []
    for type_ in _input_types(model.program):
        if not isinstance(type_, TensorType):
            raise InputError(f"{model.name}: input of type {type_} has no example value: give --calibration")
        shape = tuple(type_.get_shape())
        if DYNAMIC_INDEX in shape:
            raise InputError(f"{model.name}: input {type_} has dynamic dimensions: give --calibration with real inputs")
        dtype = torch_dtype(type_.element_type)
        batch.append(torch.randn(shape, generator=generator, dtype=dtype) if dtype.is_floating_point
                     else torch.ones(shape, dtype=dtype))
    return tuple(batch)
