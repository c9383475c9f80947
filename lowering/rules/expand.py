"""Rule files that reuse: `for` loops, `include ... with`, and `{name}` parameters.

Before a rule file is parsed, its templates are expanded, as TableGen expands
`foreach` and `defm` before anything reads the records:

    for rank in [1, 2, 3] {
      for (post, kernel) in [(none, conv{rank}d), ("relu", conv{rank}d_relu)] {
        rule {kernel} {
          match { %y = ref.conv(%x, %w, %b) {post = {post}} }
          where spatial_rank(%y) == {rank}
          replace { %y = {dialect}.{kernel}(%x) -> type(%y) }
        }
      }
    }

    include "../quantized_kernels/quantized_kernels.rules" with dialect = qnnpack, engine = "qnnpack"

* `for NAME in [v, ...] { ... }` repeats its body (rules, loops, includes) once per
  value, in order; `for (A, B) in [(a, b), ...]` binds several names per step.
* `include "path" with NAME = v, ...` reads another rule file (its path relative to
  the including file) with those parameters, as if its rules were written here.
  The `with` list ends at the end of the line (after a `,`, it goes on to the next).
* `{NAME}`, anywhere but in comments (in op and rule names, strings, literals,
  expressions), is the text of the value NAME stands for: a value is text, a name,
  a literal or an expression (`conv_engine(%y)`), substituted as written. So
  `conv{rank}d` is `conv2d` when rank is 2, and `"{fn}.default"` is
  `"silu.default"` when fn is silu. A value list of a loop may itself be a
  parameter (`for rank in {ranks}`).

Substitution is textual but positions are not lost: every character of the
expanded text remembers the file and offset it was written at (a substituted
value, where its `{name}` stands), so an error in an expanded rule is reported
at its place in the template, with the values it was expanded for:

    quantized_kernels.rules:54:12: error: unknown op 'qnnpack.conv_transpose3d': dialect 'qnnpack'
    has no such op (where rank = 3; included from qnnpack.rules:8:1)

Errors of the templates themselves (an unknown `{name}`, a loop of two names over a
value that is not a pair, a parameter an included file never uses, a name bound
twice, an include cycle, a missing file) are `ParseFailure`s at their place too.
Comments are `# text` (a `#` directly followed by a letter starts an attribute
such as `#aten.dtype<float32>`) or `// text`; they may mention `{name}` freely.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

from qir.errors import ParseFailure

# --------------------------------------------------------------------------
# Text that remembers where each character was written.
# --------------------------------------------------------------------------


class SourceFile:
    """One file's text, with its line starts (for offset -> line:column)."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self._line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def __repr__(self) -> str:
        return f"<SourceFile {self.name}>"


Context = tuple[str, ...]
"""What an expansion was for, innermost last: `rank = 2`, `included from x86.rules:3:1`."""


@dataclass(frozen=True)
class Span:
    start: int
    """Where the span starts in the text it belongs to."""
    file: SourceFile
    offset: int
    """Where its first character was written in `file`."""
    context: Context
    fixed: bool = False
    """A substituted value: every character is reported where its `{name}` stands."""


@dataclass(frozen=True)
class Location:
    """A place in a rule file, for messages: `file:line:col`, plus the expansion it was in."""

    filename: str
    line: int
    column: int
    context: Context = ()

    @property
    def note(self) -> str:
        """` (where rank = 2; included from x86.rules:3:1)`, or nothing outside templates."""
        if not self.context:
            return ""
        loops = [c for c in self.context if not c.startswith("included from ")]
        includes = [c for c in reversed(self.context) if c.startswith("included from ")]
        parts = ([f"where {', '.join(loops)}"] if loops else []) + includes
        return f" ({'; '.join(parts)})"

    def error(self, message: str) -> ParseFailure:
        return ParseFailure(self.filename, self.line, self.column, message + self.note)


class Mapped:
    """Text whose characters each know their origin (a list of spans, sorted by start)."""

    __slots__ = ("text", "spans", "_starts")

    def __init__(self, text: str, spans: list[Span]):
        self.text = text
        self.spans = spans
        self._starts: list[int] | None = None

    @staticmethod
    def of(file: SourceFile, context: Context = ()) -> "Mapped":
        return Mapped(file.text, [Span(0, file, 0, context)])

    def __len__(self) -> int:
        return len(self.text)

    def _span_at(self, index: int) -> int:
        if self._starts is None:
            self._starts = [s.start for s in self.spans]
        return max(0, bisect.bisect_right(self._starts, index) - 1)

    def locate(self, index: int) -> Location:
        """Where character `index` was written (the end of the text: just after its last character)."""
        if not self.spans:
            return Location("<rules>", 1, 1)
        if index >= len(self.text) and self.text:
            last = self.locate(len(self.text) - 1)
            file, offset = self._origin(len(self.text) - 1)
            line, column = file.position(offset + 1)
            return Location(file.name, line, column, last.context)
        span = self.spans[self._span_at(index)]
        offset = span.offset + (0 if span.fixed else index - span.start)
        line, column = span.file.position(offset)
        return Location(span.file.name, line, column, span.context)

    def _origin(self, index: int) -> tuple[SourceFile, int]:
        span = self.spans[self._span_at(index)]
        if span.fixed:  # just after a `{name}`: after its closing brace
            end = span.file.text.find("}", span.offset)
            return span.file, end if end >= 0 else span.offset
        return span.file, span.offset + (index - span.start)

    def slice(self, start: int, end: int) -> "Mapped":
        start, end = max(0, start), min(len(self.text), end)
        if start >= end:
            return Mapped("", [])
        first = self._span_at(start)
        spans = []
        for span in self.spans[first:]:
            if span.start >= end:
                break
            skip = 0 if span.fixed else max(0, start - span.start)
            spans.append(Span(max(span.start, start) - start, span.file, span.offset + skip, span.context,
                              span.fixed))
        return Mapped(self.text[start:end], spans)

    def in_context(self, frame: str) -> "Mapped":
        """The same text, inside one more expansion."""
        return Mapped(self.text, [Span(s.start, s.file, s.offset, s.context + (frame,), s.fixed)
                                  for s in self.spans])

    def strip(self) -> "Mapped":
        text = self.text
        start = len(text) - len(text.lstrip())
        end = len(text.rstrip())
        return self.slice(start, end)

    @staticmethod
    def join(parts: list["Mapped"]) -> "Mapped":
        text, spans, at = [], [], 0
        for part in parts:
            if not part.text:
                continue
            text.append(part.text)
            spans.extend(Span(s.start + at, s.file, s.offset, s.context, s.fixed) for s in part.spans)
            at += len(part.text)
        return Mapped("".join(text), spans)


# --------------------------------------------------------------------------
# Lexing just enough: strings, comments, brackets, names.
# --------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_OPEN, _CLOSE = "([{<", ")]}>"


def _comment_end(text: str, i: int) -> int | None:
    """The end of a comment starting at `i`, or None if none starts there."""
    if text.startswith("//", i) or (text[i] == "#" and not (i + 1 < len(text) and (text[i + 1].isalpha()
                                                                                    or text[i + 1] == "_"))):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    return None


_CODE_STOPS = re.compile(r'["#/]')


def _code_regions(text: str, start: int = 0, end: int | None = None):
    """(start, end) of the parts of `text` that are not comments (strings included)."""
    end = len(text) if end is None else end
    i = region = start
    while True:
        stop = _CODE_STOPS.search(text, i, end)
        if stop is None:
            break
        i = stop.start()
        if text[i] == '"':
            i = _STRING.match(text, i).end()
            continue
        comment = _comment_end(text, i)
        if comment is None:
            i += 1
            continue
        if region < i:
            yield region, i
        i = region = comment
    if region < end:
        yield region, end


def _skip_space(text: str, i: int) -> int:
    """The next index that is neither white space nor in a comment."""
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        stop = _comment_end(text, i) if text[i] in "#/" else None
        if stop is None:
            return i
        i = stop
    return i


def _matching(text: str, i: int, close: str) -> int | None:
    """The index of the bracket closing the one at `i` (strings and comments skipped), or None.
    Only `close`'s kind is counted: `<` and `>` are also comparison and arrow characters."""
    stops = re.compile('["#/' + re.escape(text[i] + close) + "]")
    opening = text[i]
    depth = 0
    while True:
        stop = stops.search(text, i)
        if stop is None:
            return None
        i = stop.start()
        c = text[i]
        if c == '"':
            i = _STRING.match(text, i).end()
            continue
        if c in "#/":
            comment = _comment_end(text, i)
            i = comment if comment is not None else i + 1
            continue
        if c == opening:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return i
        i += 1


def _block_start(text: str, i: int) -> int | None:
    """The first `{` from `i` that opens a block (not a `{name}` parameter), or None."""
    while True:
        i = text.find("{", i)
        if i < 0:
            return None
        placeholder = _PLACEHOLDER.match(text, i)
        if placeholder is None:
            return i
        i = placeholder.end()


def _split_items(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The (start, end) of each comma-separated item of `text[start:end]`, at bracket depth 0."""
    items, depth, i, item = [], 0, start, start
    while i < end:
        c = text[i]
        if c == '"':
            i = _STRING.match(text, i).end()
            continue
        if c in "#/":
            stop = _comment_end(text, i)
            if stop is not None:
                i = stop
                continue
        if c == "-" and text.startswith("->", i):
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == "," and depth == 0:
            items.append((item, i))
            item = i + 1
        i += 1
    items.append((item, end))
    return items


# --------------------------------------------------------------------------
# Expansion.
# --------------------------------------------------------------------------


@dataclass
class Expansion:
    """The expanded text of a rule file, and the other files it read."""

    text: Mapped
    dependencies: list[Path]


@dataclass
class _Binding:
    value: Mapped
    where: Location
    used: bool = False


class Expander:
    """Expands the templates of one rule file and of the files it includes."""

    def __init__(self, top: str, directory: Path | None):
        self.top = top
        self.directory = directory
        """What the includes of `top` are relative to (those of included files: their folder)."""
        self.dependencies: list[Path] = []

    def expand_file(self, file: SourceFile) -> Mapped:
        top = Path(file.name).resolve() if self.directory is not None else None
        text = self.expand(Mapped.of(file), {}, (top,) if top is not None else ())
        self._check_unbound(text)
        return text

    # -- substitution --

    def substitute(self, text: Mapped, bindings: dict[str, _Binding]) -> Mapped:
        """`text` with every `{name}` of `bindings` replaced by its value (outside comments)."""
        parts, at = [], 0
        for start, end in _code_regions(text.text):
            for match in _PLACEHOLDER.finditer(text.text, start, end):
                binding = bindings.get(match.group(1))
                if binding is None:
                    continue
                binding.used = True
                parts.append(text.slice(at, match.start()))
                if binding.value.text:
                    site = text.spans[text._span_at(match.start())]
                    offset = site.offset + (0 if site.fixed else match.start() - site.start)
                    parts.append(Mapped(binding.value.text, [Span(0, site.file, offset, site.context, True)]))
                at = match.end()
        if not parts:
            return text
        parts.append(text.slice(at, len(text)))
        return Mapped.join(parts)

    def _check_unbound(self, text: Mapped) -> None:
        for start, end in _code_regions(text.text):
            match = _PLACEHOLDER.search(text.text, start, end)
            if match is not None:
                raise text.locate(match.start()).error(
                    f"{{{match.group(1)}}} is not a parameter here (parameters are bound by `for` and "
                    "`include ... with`)")

    # -- structure --

    def expand(self, text: Mapped, scope: dict[str, Location], including: tuple[Path, ...]) -> Mapped:
        """Expand the loops and includes at the top level of `text` (its rules pass unchanged)."""
        source = text.text
        parts: list[Mapped] = []
        at = i = 0
        while True:
            i = _skip_space(source, i)
            if i >= len(source):
                break
            match = _NAME.match(source, i)
            word = match.group() if match else None
            if word == "rule":
                brace = _block_start(source, match.end())
                close = _matching(source, brace, "}") if brace is not None else None
                i = len(source) if close is None else close + 1  # the parser reports what is missing
                continue
            if word in ("for", "include"):
                parts.append(text.slice(at, i))
                if word == "for":
                    i, expanded = self._for(text, match.end(), scope, including)
                else:
                    i, expanded = self._include(text, match.end(), i, including)
                parts.append(expanded)
                at = i
                continue
            # Anything else is the parser's to report: pass it on.
            i = match.end() if match else i + 1
        parts.append(text.slice(at, len(text)))
        return Mapped.join(parts)

    def _expect(self, text: Mapped, i: int, what: str, found_at: int | None = None) -> ParseFailure:
        at = _skip_space(text.text, i) if found_at is None else found_at
        if at >= len(text.text):
            return text.locate(len(text.text)).error(f"unexpected end of file; expected {what}")
        token = _NAME.match(text.text, at)
        shown = token.group() if token else text.text[at]
        return text.locate(at).error(f"unexpected {shown!r}; expected {what}")

    def _name(self, text: Mapped, i: int, scope: dict[str, Location], bound: dict[str, Location],
              what: str) -> tuple[int, str]:
        i = _skip_space(text.text, i)
        match = _NAME.match(text.text, i)
        if match is None:
            raise self._expect(text, i, what)
        name = match.group()
        where = text.locate(i)
        if name in ("for", "in", "include", "with", "rule"):
            raise where.error(f"{name!r} is a keyword: name the parameter otherwise")
        if name in scope or name in bound:
            first = scope.get(name) or bound[name]
            raise where.error(f"{name} is already a parameter here (bound at {first.filename}:{first.line}:"
                              f"{first.column})")
        bound[name] = where
        return match.end(), name

    def _for(self, text: Mapped, i: int, scope: dict[str, Location],
             including: tuple[Path, ...]) -> tuple[int, Mapped]:
        source = text.text
        names: list[str] = []
        bound: dict[str, Location] = {}
        i = _skip_space(source, i)
        tuple_loop = i < len(source) and source[i] == "("
        if tuple_loop:
            close = _matching(source, i, ")")
            if close is None:
                raise text.locate(i).error("unclosed '(' in the names of a for loop")
            for a, b in _split_items(source, i + 1, close):
                end, name = self._name(text, a, scope, bound, "a parameter name")
                if _skip_space(source, end) < b:
                    raise self._expect(text, end, "',' or ')'")
                names.append(name)
            i = close + 1
        else:
            i, name = self._name(text, i, scope, bound, "a parameter name or '(' names ')'")
            names.append(name)
        i = _skip_space(source, i)
        keyword = _NAME.match(source, i)
        if keyword is None or keyword.group() != "in":
            raise self._expect(text, i, "'in'")
        i = _skip_space(source, i + 2)
        if _PLACEHOLDER.match(source, i):
            self._check_unbound(text.slice(i, len(source)))
        if i >= len(source) or source[i] != "[":
            raise self._expect(text, i, "'[' values ']' (or a parameter that stands for them)")
        close = _matching(source, i, "]")
        if close is None:
            raise text.locate(i).error("unclosed '[' in the values of a for loop")
        steps: list[dict[str, _Binding]] = []
        items = [] if not source[i + 1:close].strip() else _split_items(source, i + 1, close)
        for a, b in items:
            value = text.slice(a, b).strip()
            if not value.text:
                at = _skip_space(source, a) if a < b else a
                raise text.locate(at).error("empty value in the list of a for loop")
            if tuple_loop:
                if not (value.text.startswith("(") and _matching(value.text, 0, ")") == len(value.text) - 1):
                    raise value.locate(0).error(f"each value of a loop over ({', '.join(names)}) is a "
                                                f"tuple of {len(names)}: ({', '.join('...' for _ in names)})")
                parts = [value.slice(x, y).strip() for x, y in _split_items(value.text, 1, len(value.text) - 1)]
                if len(parts) != len(names) or any(not p.text for p in parts):
                    raise value.locate(0).error(f"a tuple of {len(parts)} for the {len(names)} names "
                                                f"({', '.join(names)})")
            else:
                parts = [value]
            steps.append({n: _Binding(p, p.locate(0)) for n, p in zip(names, parts)})
        i = _skip_space(source, close + 1)
        if i >= len(source) or source[i] != "{":
            raise self._expect(text, i, "'{' (the body of the loop)")
        body_end = _matching(source, i, "}")
        if body_end is None:
            raise text.locate(i).error("unclosed '{': the body of this for loop has no '}'")
        body = text.slice(i + 1, body_end)
        inner = {**scope, **bound}
        expanded = []
        for step in steps:
            frame = ", ".join(f"{n} = {b.value.text}" for n, b in step.items())
            instance = self.substitute(body, step).in_context(frame)
            expanded.append(self.expand(instance, inner, including))
        unused = [n for n in names if steps and not any(step[n].used for step in steps)]
        if unused:
            raise bound[unused[0]].error(f"the body of this loop never uses {{{unused[0]}}}")
        return body_end + 1, Mapped.join(expanded)

    def _include(self, text: Mapped, i: int, start: int, including: tuple[Path, ...]) -> tuple[int, Mapped]:
        source = text.text
        i = _skip_space(source, i)
        string = _STRING.match(source, i) if i < len(source) and source[i] == '"' else None
        if string is None or not string.group().endswith('"') or len(string.group()) < 2:
            raise self._expect(text, i, "the path of the file to include, as a string")
        path_text = string.group()[1:-1]
        path_at = text.locate(i)
        i = string.end()
        bindings: dict[str, _Binding] = {}
        bound: dict[str, Location] = {}
        j = _skip_space(source, i)
        if _NAME.match(source, j) and _NAME.match(source, j).group() == "with":
            i = j + 4
            while True:
                i, name = self._name(text, i, {}, bound, "a parameter name")
                i = _skip_space(source, i)
                if i >= len(source) or source[i] != "=":
                    raise self._expect(text, i, f"'=' (the value of {name})")
                i, value = self._value(text, i + 1)
                if not value.text:
                    raise text.locate(i).error(f"expected the value of {name} after '='")
                bindings[name] = _Binding(value, bound[name])
                if i < len(source) and source[i] == ",":
                    i += 1
                    continue
                break
        base = self.directory if path_at.filename == self.top else Path(path_at.filename).parent
        path = ((base or Path.cwd()) / path_text).resolve()
        if path in including:
            chain = " -> ".join(p.name for p in (*including, path))
            raise path_at.error(f"include cycle: {chain}")
        try:
            included_text = path.read_text()
        except OSError as err:
            raise path_at.error(f"cannot read {path_text!r} ({path}): {err.strerror}") from None
        self.dependencies.append(path)
        at = text.locate(start)
        frame = f"included from {at.filename}:{at.line}:{at.column}"
        file = SourceFile(str(path), included_text)
        body = self.substitute(Mapped.of(file, text.locate(start).context + (frame,)), bindings)
        for name, binding in bindings.items():
            if not binding.used:
                raise binding.where.error(f"{path.name} never uses {{{name}}}")
        expanded = self.expand(body, dict(bound), (*including, path))
        self._check_unbound(expanded)
        return i, expanded

    def _value(self, text: Mapped, i: int) -> tuple[int, Mapped]:
        """A value of an include's `with` list: up to a `,` at bracket depth 0, a comment, or
        the end of the line."""
        source = text.text
        while i < len(source) and source[i] in " \t":
            i += 1
        start, depth = i, 0
        while i < len(source):
            c = source[i]
            if c == '"':
                i = _STRING.match(source, i).end()
                continue
            if c == "\n" and depth == 0:
                break
            if c in "#/" and _comment_end(source, i) is not None:
                break
            if c == "-" and source.startswith("->", i):
                i += 2
                continue
            if c in _OPEN:
                depth += 1
            elif c in _CLOSE:
                depth -= 1
            elif c == "," and depth == 0:
                break
            i += 1
        return i, text.slice(start, i).strip()


def expand_rules(text: str, filename: str, directory: Path | None = None) -> Expansion:
    """The rule text with its loops, includes and parameters expanded, mapped to where each part
    was written; a `ParseFailure` at the first error of a template."""
    if directory is None and not filename.startswith("<"):
        directory = Path(filename).parent
    expander = Expander(filename, directory)
    expanded = expander.expand_file(SourceFile(filename, text))
    return Expansion(expanded, list(dict.fromkeys(expander.dependencies)))
