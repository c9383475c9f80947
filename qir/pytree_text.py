"""Pytree specs as short text, so the IR shows a model's calling convention.

    ((*, *), {scale: *})        args (x, y) and a keyword `scale`
    {a: (*, [*, *]), b: {c: *}} a nested output

`*` is a leaf, `(...)` a tuple, `[...]` a list, `{k: ...}` a dict with string
keys, `None` an empty None node. Anything else (namedtuples, registered
classes, non-string keys) is kept as torch's own JSON, prefixed `json:`.
"""

from __future__ import annotations


import re

from torch.utils import _pytree as pytree

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spec_to_text(spec: pytree.TreeSpec) -> str:
    try:
        return _to_text(spec)
    except ValueError:
        return "json:" + pytree.treespec_dumps(spec)


def _to_text(spec: pytree.TreeSpec) -> str:
    if spec.is_leaf():
        return "*"
    children = [_to_text(c) for c in spec.children()]
    if spec.type is tuple:
        return "(" + ", ".join(children) + ("," if len(children) == 1 else "") + ")"
    if spec.type is list:
        return "[" + ", ".join(children) + "]"
    if spec.type is dict and all(isinstance(k, str) and _KEY.fullmatch(k) for k in spec.context):
        return "{" + ", ".join(f"{k}: {c}" for k, c in zip(spec.context, children)) + "}"
    if spec.type is type(None):
        return "None"
    raise ValueError(f"no short form for {spec.type}")


def spec_from_text(text: str) -> pytree.TreeSpec:
    if text.startswith("json:"):
        return pytree.treespec_loads(text[5:])
    tokens = re.findall(r"None|[A-Za-z_][A-Za-z0-9_]*|[*(){}\[\],:]", text)
    spec, rest = _parse(tokens)
    if rest:
        raise ValueError(f"trailing text in pytree spec {text!r}")
    return spec


def _parse(tokens: list[str]) -> tuple[pytree.TreeSpec, list[str]]:
    head, rest = tokens[0], tokens[1:]
    if head == "*":
        return pytree.TreeSpec(None, None, []), rest
    if head == "None":
        return pytree.TreeSpec(type(None), None, []), rest
    close = {"(": ")", "[": "]", "{": "}"}[head]
    keys, children = [], []
    while rest[0] != close:
        if head == "{":
            keys.append(rest[0])
            rest = rest[2:]  # key and ':'
        child, rest = _parse(rest)
        children.append(child)
        if rest[0] == ",":
            rest = rest[1:]
    rest = rest[1:]
    if head == "(":
        return pytree.TreeSpec(tuple, None, children), rest
    if head == "[":
        return pytree.TreeSpec(list, None, children), rest
    return pytree.TreeSpec(dict, keys, children), rest



