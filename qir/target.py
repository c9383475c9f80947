"""The CPU a program is compiled for: a named set of ISA features, as a target triple in LLVM.

The int8 kernels torch offers compute differently on different CPUs. Without
AVX-512 VNNI, fbgemm's and oneDNN's uint8 x int8 kernels multiply with
`vpmaddubsw`, which adds each pair of products in 16 bits with saturation
(255 x 127 x 2 does not fit); with VNNI (or AMX) every product is accumulated
in 32 bits, exactly. So a quantizer, a lowering and a reference emulation all
need to know the target, and a lowered program records it (`qir.target` on
the module) and refuses to run where it would compute something else.

Targets are written as a preset name, optionally with `+feature` / `-feature`:

    host                 the CPU this process runs on (the default everywhere)
    x86-avx2             AVX2, no AVX-512, no VNNI            (int8 pairs saturate)
    x86-avx512           AVX-512 without VNNI (Skylake-X)     (int8 pairs saturate)
    x86-avx512-vnni      AVX-512 with VNNI (Cascade Lake on; AMD Zen 4 on)
    x86-amx              AVX-512 VNNI and AMX tiles (Sapphire Rapids on)
    arm64                NEON
    arm64-dotprod        NEON with the dot-product instructions
    arm64-i8mm           NEON, dot-product and int8 matrix multiply
    x86-avx2+avx_vnni    a preset with one more feature (Alder Lake's AVX-VNNI)

The host's features are those torch's int8 libraries actually use: what the
CPU has, narrowed by the switches those libraries read
(`FBGEMM_ENABLE_INSTRUCTIONS`, `ONEDNN_MAX_CPU_ISA`, `ATEN_CPU_CAPABILITY`), so
that a VNNI machine told to behave like an AVX2 one is an AVX2 target.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from functools import cache

X86_FEATURES = ("avx2", "avx512", "avx512_vnni", "avx_vnni", "amx")
ARM_FEATURES = ("neon", "dotprod", "i8mm")

PRESETS: dict[str, tuple[str, frozenset[str]]] = {
    "x86-avx2": ("x86_64", frozenset({"avx2"})),
    "x86-avx512": ("x86_64", frozenset({"avx2", "avx512"})),
    "x86-avx512-vnni": ("x86_64", frozenset({"avx2", "avx512", "avx512_vnni"})),
    "x86-amx": ("x86_64", frozenset({"avx2", "avx512", "avx512_vnni", "amx"})),
    "arm64": ("aarch64", frozenset({"neon"})),
    "arm64-dotprod": ("aarch64", frozenset({"neon", "dotprod"})),
    "arm64-i8mm": ("aarch64", frozenset({"neon", "dotprod", "i8mm"})),
}

INT16_MAX = 32767
INT16_MIN = -32768


class TargetError(ValueError):
    """A target name that names no target."""


@dataclass(frozen=True)
class Target:
    """An architecture and the ISA features its int8 kernels may use."""

    arch: str
    features: frozenset[str]

    @property
    def name(self) -> str:
        """The preset's name, with `+f`/`-f` for what differs from the closest preset."""
        candidates = [(name, feats) for name, (arch, feats) in PRESETS.items() if arch == self.arch]
        if not candidates:
            return f"{self.arch}+{'+'.join(sorted(self.features))}" if self.features else self.arch
        name, feats = min(candidates, key=lambda c: (len(c[1] ^ self.features), -len(c[1])))
        extra = "".join(f"+{f}" for f in sorted(self.features - feats))
        missing = "".join(f"-{f}" for f in sorted(feats - self.features))
        return name + extra + missing

    def __str__(self) -> str:
        return self.name

    def has(self, feature: str) -> bool:
        return feature in self.features

    @property
    def pairs_saturate(self) -> bool:
        """Whether x86's uint8 x int8 kernels (fbgemm, and oneDNN's on the x86 engine) add products
        in saturating 16-bit pairs: every x86 CPU without AVX-512 VNNI. (oneDNN alone also uses
        AVX-VNNI and AMX exactly; fbgemm does not, and the x86 backend runs both, so only
        AVX-512 VNNI makes the x86 kernels exact.)"""
        return self.arch == "x86_64" and "avx512_vnni" not in self.features

    def lacks(self, features) -> frozenset[str]:
        """Which of `features` this target does not have."""
        return frozenset(features) - self.features


def parse_target(text: str | Target | None) -> Target:
    """A target from its name (`x86-avx2`, `host`, `x86-avx2+avx_vnni`); None is the host."""
    if isinstance(text, Target):
        return text
    if text is None or text.strip() in ("", "host"):
        return host()
    text = text.strip()
    head, *mods = _split_modifiers(text)
    if head == "host":
        base = host()
    elif head in PRESETS:
        base = Target(*PRESETS[head])
    else:
        raise TargetError(f"unknown target {text!r} (targets: host, {', '.join(PRESETS)}, "
                          "optionally with +feature or -feature)")
    known = X86_FEATURES if base.arch == "x86_64" else ARM_FEATURES
    features = set(base.features)
    for sign, feature in mods:
        if feature not in known:
            raise TargetError(f"unknown feature {feature!r} in target {text!r} (for {base.arch}: {', '.join(known)})")
        (features.add if sign == "+" else features.discard)(feature)
    return Target(base.arch, frozenset(features))


def _split_modifiers(text: str) -> list:
    """`x86-avx2+avx_vnni` → ["x86-avx2", ("+", "avx_vnni")]: the longest preset name (or `host`)
    the text starts with, then its `+feature` / `-feature` modifiers."""
    for head in sorted(["host", *PRESETS], key=len, reverse=True):
        rest = text[len(head):]
        if text.startswith(head) and re.fullmatch(r"([+-][a-z0-9_]+)*", rest):
            return [head, *re.findall(r"([+-])([a-z0-9_]+)", rest)]
    return [text]


@cache
def host() -> Target:
    """The CPU this process runs on, as torch's int8 libraries see it (see the module docstring)."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return Target("aarch64", frozenset({"neon", "dotprod"} if _arm_dotprod() else {"neon"}))
    import torch

    capability = torch.backends.cpu.get_cpu_capability()  # ATEN_CPU_CAPABILITY narrows it
    features = set()
    if capability in ("AVX2", "AVX512"):
        features.add("avx2")
    if capability == "AVX512":
        features.add("avx512")
    if features and torch.cpu._is_vnni_supported():
        features.add("avx512_vnni")
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        features.add("amx")
    if _cpu_flag("avx_vnni"):
        features.add("avx_vnni")
    return Target("x86_64", frozenset(features - _narrowed_by_environment()))


def _narrowed_by_environment() -> set[str]:
    """Features fbgemm or oneDNN were told not to use."""
    removed: set[str] = set()
    fbgemm = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    if fbgemm in ("AVX2",):
        removed |= {"avx512", "avx512_vnni", "amx"}
    elif fbgemm in ("AVX512", "AVX512_256"):
        removed |= {"avx512_vnni", "amx"}
    onednn = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if onednn in ("SSE41", "AVX", "AVX2"):
        removed |= {"avx512", "avx512_vnni", "avx_vnni", "amx"}
    elif onednn == "AVX2_VNNI":
        removed |= {"avx512", "avx512_vnni", "amx"}
    elif onednn in ("AVX512_CORE",):
        removed |= {"avx512_vnni", "avx_vnni", "amx"}
    elif onednn in ("AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX10_1_512"):
        removed |= {"amx"}
    return removed


def _cpu_flag(flag: str) -> bool:
    """Whether /proc/cpuinfo lists `flag` (False where there is none to read)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(flag in line.split() for line in f if line.startswith(("flags", "Features")))
    except OSError:
        return False


def _arm_dotprod() -> bool:
    return _cpu_flag("asimddp")


TARGET_ATTR = "qir.target"
"""The module attribute naming the target a program was quantized or lowered for."""


def recorded_target(module) -> Target | None:
    """The target a module records (`qir.target`), or None."""
    attr = module.attributes.get(TARGET_ATTR)
    return parse_target(attr.data) if attr is not None else None


def record_target(module, target: Target) -> None:
    from xdsl.dialects.builtin import StringAttr

    module.attributes[TARGET_ATTR] = StringAttr(target.name)


def pass_target(option: str, module) -> Target:
    """The target a pass works for: its `target` option if given, else the one the module
    records, else the host."""
    if option:
        return parse_target(option)
    return recorded_target(module) or host()
