"""qir-opt with two fake backends registered, for `reference-rewrite{backend=...}` tests.

    %python %S/Inputs/with_backend.py %s --weights %t.safetensors -p 'reference-rewrite{backend=no-conv-add}'

`no-conv-add` runs every ref op the reference backend runs but `ref.conv_add` and
`ref.lookup`; `refuse-all` runs none. A real backend is an entry point of `qir.backends`;
these exist only in this process."""

import sys

from qir.lowering import Backend, register_backend, table
from qir.lowering.reference import CAPABILITIES
from qir.tools.qir_opt import main


def refusing(name: str, refused: set[str] | None) -> Backend:
    kept = [] if refused is None else [c for c in CAPABILITIES.ops if c.op not in refused]
    return Backend(name=name, description="a fake backend", capabilities=table(*kept), leftovers=lambda op: True)


register_backend(refusing("no-conv-add", {"ref.conv_add", "ref.lookup"}))
register_backend(refusing("refuse-all", None))
sys.exit(main(sys.argv[1:]))
