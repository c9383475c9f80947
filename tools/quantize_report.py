"""qir-quantize's report: what a run found, as text for a person or as one JSON document."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TABLE_ROWS = 10
"""Rows of the per-op table in the text report (the JSON report has them all)."""


@dataclass
class Report:
    """Everything qir-quantize found, as text or as JSON."""

    model: dict[str, Any]
    backend: str
    target: str | None = None
    """The CPU the program was lowered for (`qir.target`)."""
    quantizer: str | None = None
    scheme: str | None = None
    """`--scheme` (static, dynamic, ...)."""
    calibration: dict[str, Any] | None = None
    evaluated_on: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    program: str = ""
    size: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    sqnr: dict[str, float] | None = None
    layers: list = field(default_factory=list)
    """`qir.debug.LayerRecord`s, worst first."""
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        from qir.debug import as_dicts

        return {
            "model": self.model, "backend": self.backend, "quantizer": self.quantizer, "scheme": self.scheme,
            "calibration": self.calibration, "evaluated_on": self.evaluated_on,
            "stages": {k: round(v, 4) for k, v in self.stages.items()}, "program": self.program,
            "size": self.size, "latency": self.latency, "sqnr": self.sqnr, "target": self.target,
            "layers": as_dicts(self.layers),
            "notes": self.notes, "outputs": self.outputs, "warnings": self.warnings,
        }

    def as_text(self) -> str:
        from qir.debug import format_table

        m = self.model
        lines = [f"model: {m['name']}: {m['description']} [{m['stage']}]",
                 f"backend: {self.backend}" + (f", quantizer: {self.quantizer}" if self.quantizer else "")
                 + (f", scheme: {self.scheme}" if self.scheme else "")]
        if self.calibration:
            c = self.calibration
            count = f"{c['batches']} " if c['batches'] else ""
            lines.append(f"calibration: {count}{c['source']}" + (f" ({c['note']})" if c.get("note") else ""))
        lines.append("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.stages.items()))
        lines.append(f"program: {self.program}")
        if self.size:
            s = self.size
            ratio = f" ({s['ratio']:.2f}x smaller)" if math.isfinite(s["ratio"]) else ""
            lines.append(f"size of the weights: {s['before']} {_bytes(s['before_bytes'])} -> {s['after']} "
                         f"{_bytes(s['after_bytes'])}{ratio}")
        if self.latency:
            t = self.latency
            lines.append(f"latency: {t['before']} {t['before_ms']:.2f} ms -> {t['after']} {t['after_ms']:.2f} ms "
                         f"({t['speedup']:.2f}x; medians of {t['runs']} runs, fastest {t['before_best_ms']:.2f} -> "
                         f"{t['after_best_ms']:.2f} ms, {t['threads']} threads)")
        if self.target:
            lines.append(f"target: {self.target}")
        if self.sqnr:
            figures = ", ".join(f"{k} {_db(v)} dB" for k, v in self.sqnr.items())
            lines.append(f"output SQNR: {figures}" + (f", on {self.evaluated_on}" if self.evaluated_on else ""))
        if self.layers:
            shown = min(TABLE_ROWS, len(self.layers))
            lines += [f"per-op SQNR against float, worst first ({shown} of {len(self.layers)}; "
                      "local = the op alone, on float inputs):", format_table(self.layers, TABLE_ROWS)]
        lines += [f"note: {n}" for n in self.notes]
        if self.outputs:
            lines.append("wrote " + ", ".join(p for k, p in self.outputs.items() if k != "pt2_error" and p))
            if self.outputs.get("pt2_error"):
                lines.append(f"note: model.pt2 not written: {self.outputs['pt2_error']}")
            elif self.outputs.get("pt2"):
                lines.append("note: model.pt2 calls torch's quantized_decomposed ops: `import "
                             "torch.ao.quantization.fx._decomposed` registers them before torch.export.load")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _db(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else str(value)


def jsonable(value: Any) -> Any:
    """JSON has no infinities: non-finite numbers become "inf", "-inf", "nan" (as in qir.debug)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
