"""qir-opt with two fake backends registered, for `reference-rewrite{backend=...}` tests.

    %python %S/Inputs/with_backend.py %s --weights %t.safetensors -p 'reference-rewrite{backend=no-conv-add}'

`no-conv-add` accepts every ref op but `ref.conv_add` and `ref.lookup`;
`refuse-all` accepts none. A real backend is an entry point of `qir.backends`;
these exist only in this process."""

import sys

from qir.registry import register_backend
from qir.tools.qir_opt import main


class Refusing:
    def __init__(self, name: str, refused: tuple[str, ...] | None):
        self.name = name
        self.refused = refused

    def accepts(self, op, target=None, params=None) -> bool:
        return self.refused is not None and op.name not in self.refused


register_backend(Refusing("no-conv-add", ("ref.conv_add", "ref.lookup")))
register_backend(Refusing("refuse-all", None))
sys.exit(main(sys.argv[1:]))
