"""Write random weights for every `aten.param` of an .mlir file that has no inline value.

    %python %S/Inputs/weights.py %s %t.safetensors
    qir-opt %s --weights %t.safetensors -p reference-rewrite | filecheck %s

reference-rewrite never reads weight values, but parsing checks that each
named tensor exists with its type's dtype and shape: this makes them, so the
tests stay plain text. Values are seeded (deterministic) and inside the
storage range of quantized types."""

import re
import sys

import torch
from safetensors.torch import save_file

PARAM = re.compile(r'aten\.param \w+ "([^"]+)" : tensor<(.*)>\s*$')
ALIAS = re.compile(r"^(![\w.]+) = (.*)$")
DTYPES = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64, "i32": torch.int32,
          "i16": torch.int16, "i8": torch.int8, "ui8": torch.uint8}


def tensor_for(spec: str, generator: torch.Generator) -> torch.Tensor:
    quant = re.search(r"!quant\.uniform<([iu])(\d+)", spec)
    dims_text = spec.split("x!quant")[0] if quant else spec.rsplit("x", 1)[0] if "x" in spec else ""
    shape = [int(d) for d in dims_text.split("x")] if dims_text else []
    if quant:
        dtype = getattr(torch, f"{'int' if quant.group(1) == 'i' else 'uint'}{quant.group(2)}")
    else:
        dtype = DTYPES[spec.rsplit("x", 1)[-1]]
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=dtype)
    info = torch.iinfo(dtype)
    low, high = max(info.min, -100), min(info.max, 100)
    return torch.randint(low, high + 1, shape, generator=generator, dtype=torch.int64).to(dtype)


def main(source: str, target: str) -> None:
    generator = torch.Generator().manual_seed(0)
    tensors, aliases = {}, {}
    for line in open(source):
        code = line.split("//")[0].strip()
        alias = ALIAS.match(code)
        if alias is not None:  # `!w = !quant.uniform<...>`: a type alias
            aliases[alias.group(1)] = alias.group(2)
            continue
        match = PARAM.search(code) if "aten.param" in code else None
        if match is not None:
            spec = re.sub(r"![\w.]+$", lambda m: aliases.get(m.group(0), m.group(0)), match.group(2))
            tensors.setdefault(match.group(1), tensor_for(spec, generator))
    save_file(tensors, target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
