"""Running passes in order, with stage checks, verification, timing and IR dumps.

Every qir pass declares the stages it accepts (`requires`) and the stage it
leaves (`leaves`); the manager walks the whole pipeline before running
anything, so a misordered pipeline fails up front, naming the pass and the
stage. Passes run on a copy of the program (or on one the caller gives away,
with a way to make it again: a fresh import): a failure leaves the caller's
program as it was and names the pass, the op and its location.

The IR is verified once, after the last pass: verifying every op after every
pass cost more than the passes themselves (about 0.3 s per pass on a
3200-node graph, a third of the whole flow). A pass that breaks the IR is
still named: when the result does not verify, or a pass fails with an
internal error (perhaps tripping on what an earlier pass broke), the pipeline
runs again from the untouched input with verification after every pass, and
the first pass that left invalid IR is the one reported. `verify_each=True`
verifies after every pass from the start, as mlir-opt's `-verify-each`.
Verification makes xDSL's checks, each op definition's compiled once
(`qir.verification`).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TextIO

from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError, VerifyException

from qir.context import make_context
from qir.errors import OpError, PassFailure, PipelineError, QirError, describe_op
from qir.gc_pause import paused_gc
from qir.program import STAGES, Program
from qir.registry import available_passes
from qir.verification import verify


class QirPass(ModulePass):
    """A qir pass: an xDSL ModulePass with a stage contract.

    Subclasses are frozen dataclasses, like every xDSL pass, with a `name` and
    options as fields (`fold-bn{...}` syntax). They report what they rewrote
    with `count(ctx, what)`.
    """

    requires: ClassVar[tuple[str, ...]] = STAGES
    """Stages the input may be at."""
    leaves: ClassVar[str | None] = None
    """Stage of the output; None keeps the input's stage."""


def count(ctx, what: str, n: int = 1) -> None:
    """Record that the running pass rewrote `n` things of kind `what`."""
    stats = getattr(ctx, "stats", None)
    if stats is not None:
        stats[what] += n


@dataclass
class PassRecord:
    name: str
    seconds: float
    stage_after: str
    counts: dict[str, int] = field(default_factory=dict)
    ops_before: int = 0
    ops_after: int = 0
    """Ops before and after the pass: counted only when the manager reports timing."""


def parse_passes(pipeline: str | Sequence[ModulePass | str]) -> list[ModulePass]:
    """Pass instances from `"a,b{opt=1}"` or a list of names/instances."""
    if isinstance(pipeline, str):
        items: list[ModulePass | str] = [pipeline] if pipeline.strip() else []
    else:
        items = list(pipeline)
    registry = None
    passes: list[ModulePass] = []
    for item in items:
        if isinstance(item, ModulePass):
            passes.append(item)
            continue
        registry = registry or available_passes()
        try:
            specs = list(parse_pipeline(item))
        except (ArgSpecParseError, ValueError) as err:  # ArgSpecParseError is a BaseException
            reason = [line.strip() for line in str(err).splitlines() if line.strip()][-1]
            raise PipelineError(f"cannot parse pipeline {item!r}: {reason}") from None
        for spec in specs:
            if spec.name not in registry:
                raise PipelineError(
                    f"unknown pass {spec.name!r} (available: {', '.join(registry)})"
                )
            cls = registry[spec.name]()
            try:
                passes.append(cls.from_pass_spec(spec))
            except Exception as err:
                raise PipelineError(f"pass {spec.name!r}: bad options: {err}") from None
    return passes


def check_stages(passes: Sequence[ModulePass], stage: str) -> str:
    """The stage after the pipeline, or a PipelineError naming the first misplaced pass."""
    for p in passes:
        requires = getattr(p, "requires", STAGES)
        if stage not in requires:
            raise PipelineError(
                f"pass {p.name!r} needs a program at stage {' or '.join(repr(s) for s in requires)}, "
                f"but it would run on stage {stage!r}"
            )
        stage = getattr(p, "leaves", None) or stage
    return stage


class PassManager:
    """Runs a pipeline on a Program and returns the result as a new Program."""

    def __init__(self, pipeline: str | Sequence[ModulePass | str] = (), *, verify: bool = True,
                 verify_each: bool = False, timing: bool = False, print_ir_after_all: bool = False,
                 stream: TextIO | None = None):
        self.passes = parse_passes(pipeline)
        self.verify = verify
        self.verify_each = verify and verify_each
        self.timing = timing
        self.print_ir_after_all = print_ir_after_all
        self.stream = stream
        self.records: list[PassRecord] = []
        self._setup: Callable[[Program], None] | None = None

    def run(self, program: Program, *, setup: Callable[[Program], None] | None = None,
            fresh: Callable[[], Program] | None = None) -> Program:
        """Run every pass on a copy of `program`; the argument is never changed. `setup` is called
        on that copy before the first pass (convert reads the calibration module's statistics into
        it, rather than into a copy of its own that would be copied again).

        `fresh` makes `program` again (a new import of the same model): given it, the caller keeps
        no other reference to `program`, the passes rewrite it in place (copying 3,000 ops cost
        as much as a pass), and `fresh()` is called only after a failure, for the untouched input
        that finding the pass to blame needs."""
        check_stages(self.passes, program.stage)
        self._setup = setup
        with paused_gc():  # passes build many small objects and free none: collections only cost time
            result = self._run_all(program, self.passes, self.verify_each, fresh=fresh)
            if self.verify and not self.verify_each:
                try:
                    _verify(result)
                except VerifyException as err:
                    self._blame(program if fresh is None else fresh(), len(self.passes))
                    raise PassFailure(self.passes[-1].name if self.passes else "(no pass)",
                                      f"left invalid IR: {err}", _failing_op(result)) from err
        if self.timing:
            self.report_timing()
        return result

    def _run_all(self, program: Program, passes: Sequence[ModulePass], verify_each: bool,
                 dump: bool = True, fresh: Callable[[], Program] | None = None) -> Program:
        """`passes` run on a copy of `program`, or on `program` itself when `fresh` can make it
        again. A pass failing with an internal error may have tripped on IR an earlier one broke:
        unless every pass was verified, that one is blamed (on the untouched input)."""
        result = program.clone() if fresh is None else program
        if self._setup is not None:
            self._setup(result)
        ctx = make_context(result.params)
        self.records = []
        for index, p in enumerate(passes):
            try:
                self._run_one(p, result, ctx, verify_each, dump)
            except PassFailure as failure:
                if failure.internal and self.verify and not verify_each:
                    self._blame(program if fresh is None else fresh(), index)
                raise
        return result

    def _blame(self, program: Program, stop: int) -> None:
        """Run the first `stop` passes again on `program` (still untouched), verifying after each:
        the PassFailure of the first one that leaves invalid IR, if any, is raised."""
        self._run_all(program, self.passes[:stop], verify_each=True, dump=False)

    def _run_one(self, p: ModulePass, program: Program, ctx, verify: bool, dump: bool = True) -> None:
        ctx.stats = Counter()
        before = _op_count(program) if self.timing else 0  # counting walks every op: only for the report
        start = time.perf_counter()
        try:
            p.apply(ctx, program.module)
            if getattr(p, "leaves", None):
                program.stage = p.leaves
        except OpError as err:
            raise PassFailure(p.name, err.message, describe_op(err.op)) from err
        except QirError as err:
            raise PassFailure(p.name, str(err)) from err
        except Exception as err:  # a bug in the pass (an attribute it built did not verify, ...):
            # still say which pass, never a bare traceback
            failure = PassFailure(p.name, f"internal error: {type(err).__name__}: {err}")
            failure.internal = True
            raise failure from err
        if verify:
            try:
                _verify(program)
            except VerifyException as err:
                raise PassFailure(p.name, f"left invalid IR: {err}", _failing_op(program)) from err
        seconds = time.perf_counter() - start
        self.records.append(PassRecord(p.name, seconds, program.stage, dict(ctx.stats),
                                       before, _op_count(program) if self.timing else 0))
        if self.print_ir_after_all and dump:
            out = self.stream or sys.stderr
            out.write(f"// -----// IR Dump After {p.name} //----- //\n{program.text()}")

    def report_timing(self, stream: TextIO | None = None) -> None:
        out = stream or self.stream or sys.stderr
        total = sum(r.seconds for r in self.records) or 1e-12
        out.write("===" + "-" * 60 + "===\n  qir pass execution timing report\n")
        out.write(f"  total: {total * 1000:.2f} ms\n")
        out.write(f"  {'ms':>9} {'%':>6}  {'ops':>11}  pass  (rewrites)\n")
        for r in self.records:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(r.counts.items()))
            out.write(f"  {r.seconds * 1000:9.2f} {100 * r.seconds / total:6.1f}  "
                      f"{r.ops_before:>5}->{r.ops_after:<5}  {r.name}"
                      + (f"  ({counts})" if counts else "") + "\n")


def _op_count(program: Program) -> int:
    return sum(1 for _ in program.module.walk()) - 1


def _verify(program: Program) -> None:
    verify(program.module)


def _failing_op(program: Program) -> str | None:
    for op in program.module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except Exception:
            return describe_op(op)
    return None
