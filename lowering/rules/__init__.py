"""Declarative lowering rules: IR patterns and their replacements, as text.

A backend lowers `ref` ops (and the odd `aten.op` or Q/DQ chain around them) to
its own kernel ops. Most of that is a table — this op, with these attributes
and these types, becomes that kernel op with those attributes — so a backend
writes it as rules whose patterns are the IR text users already read from
`qir-opt`, and keeps Python for what needs computing:

    # comments: '#' or '//' to the end of the line
    rule conv2d_relu benefit 2 {
      match {
        %y = ref.conv(%x, %w, %b) {post = "relu", stride = $stride, groups = $groups} : ($tx, _, _) -> $ty
      }
      where rank(%x) == 4, not is_per_tensor(%w), storage(%x) == "u8"
      replace {
        %p = x86.conv_prepack(%w, %b) {stride = $stride, groups = $groups, padding = attr(%y, "padding")} -> !x86.packed_conv
        %y = x86.qconv2d_relu(%x, %p) {scale = scale(%y), zero_point = zero_point(%y)} -> type(%y)
      }
    }

    rules = RuleSet.from_file(Path(__file__).with_name("x86.rules"), functions={...}, dialects=[X86])
    counts = rules.apply(module, target="x86-avx2")   # Counter: rule name -> times applied

Rules that differ only in a rank, an op name or a post op are written once, as
a template (`expand.py`), and backends that share kernels share a file:

    for rank in [1, 2, 3] {
      for (post, kernel) in [(none, conv{rank}d), ("relu", conv{rank}d_relu)] {
        rule {kernel} {
          match { %y = ref.conv(%x, %w, %b) {post = {post}} }
          where spatial_rank(%y) == {rank}, not is_transposed(%y)
          replace { %y = {dialect}.{kernel}(%x, %w, %b) -> type(%y) }
        }
      }
    }

    include "../quantized_kernels/quantized_kernels.rules" with dialect = qnnpack, conv_engine = "qnnpack"

Grammar (`grammar.lark` is the definitive text of rules; LALR(1), white space
free-form; `for`, `include` and `{name}` are expanded before it is parsed):

    file        := (rule | for | include)*
    for         := 'for' (NAME | '(' NAME,+ ')') 'in' '[' value,* ']' '{' (rule | for | include)* '}'
    include     := 'include' STRING ('with' NAME '=' value (',' NAME '=' value)*)?
    rule        := 'rule' NAME ('benefit' INT)? '{' match where? provenance? replace '}'
    match       := 'match' '{' match-op+ '}'
    match-op    := (results '=')? op-name '(' operand-pattern,* ')' attr-pattern? signature?
    results     := %name (',' %name)*
    op-name     := dialect.op | 'aten.op' STRING          # "gelu.default": the ATen overload
    operand-pattern := %name | %name... | _
    attr-pattern := '{' (key '=' ($cap | $cap? | _ | LITERAL)),* '}'
    signature   := ':' '(' type-pattern,* ')' '->' type-results | '->' type-results
    type-results := type-pattern | '(' type-pattern,* ')'
    type-pattern := $cap | _ | LITERAL
    where       := 'where' condition (',' condition)*
    condition   := expr | 'not' expr | expr '==' expr | expr '!=' expr
                 | 'target' 'has' FEATURE | 'not' 'target' 'has' FEATURE
    provenance  := 'provenance' %name
    expr        := NAME '(' expr,* ')' | %name | $cap | LITERAL
    replace     := 'replace' '{' statement* '}'
    statement   := (results '=')? op-name '(' (%name | %name...),* ')' ('{' (key '=' expr),* '}')? ('->' build-types)?
                 | %name '=' %name                          # alias
    build-types := expr | '(' expr,* ')'

`LITERAL` is MLIR attribute or type text, parsed by xDSL's own parser in the
rules' context: `"relu"`, `1`, `1 : i32`, `0.5`, `true`, `none`,
`array<i64: 1, 1>`, `tensor<4xf32>`, `!quant.uniform<u8:f32, 0.02:128>`,
`#aten.dtype<float32>`, `dense<1.0> : tensor<f32>`. At its top level it is
atoms and `<...>`/`[...]` groups without white space (but for `value : type`);
an identifier directly followed by `(` is a function call, never a literal.
Where a literal may stand, `#` directly followed by a letter starts an
attribute (`#aten.dtype<float32>`) rather than a comment.

**match.** One or more ops; the last is the root, the others must feed it
(each must have a result a later op of the match reads), in dataflow order.
Any registered op is written this way, whatever its own printed syntax
(`%q = quant.qcast(%x)`); operands are the op's operands in order (for
`aten.op`, its SSA operands). Operands: `%name` binds a value (a second
occurrence must be the same value; a name defined by an earlier match op
means that operand is that op's result), `_` is any, `%name...` binds the
rest (at most one per op; `len(%name)` counts them). Attribute entries are
looked up as printed, property or attribute alike (`KernelOp.attribute_or_property`);
an `aten.op` entry names a schema argument (`approximate` of `gelu.default`,
its default when the call omits it) or else a discardable attribute:
`key = LITERAL` must be equal, `key = none` absent (or `none`),
`key = $c` present and bound, `key = $c?` bound to None when absent,
`key = _` present. Entries not mentioned are not constrained. Types:
literal (equal), `$c` (bound; a second use must be equal; captures of types
and attributes share one namespace), `_`; a variadic operand's type pattern
applies to each of its values. The number of result names is the op's
number of results. A non-root matched op whose result is used outside the
match blocks the match.

**where.** Conditions, all of which must hold, evaluated in order after the
structure matched. `expr` alone must be a boolean (`true`/`false`, or None:
false); `==`/`!=` compare values by identity and everything else as
attributes (so `rank(%x) == 4` compares `4 : i64` with `4 : i64`).

**replace.** Statements run in order. `%r = dialect.op(...)` builds an op:
operands are matched values or earlier results (`%xs...` spreads a variadic
binding); entries the op declares as properties become properties, the
others discardable attributes (for a new `aten.op`, schema arguments become
keyword arguments); an entry whose expression gives None is left out; result
types are expressions (`type(%y)`, `$ty`, a literal, a call) and may be left
out when every result redefines a matched value (its type is kept). A result
named like a matched result (`%y`) replaces that value everywhere (but in
the ops this rule builds before it); `%y = %x` replaces it by an existing
value. Every result of the root must be redefined (checked when the rules
are loaded: the root is erased); reading one as an operand before that is
an error, reading it in an expression (`scale(%y)`) is not. New ops take the
root's location and the matched ops' provenance (below); matched ops left
without uses are erased. New values are named after the rule's `%name`s.

**provenance.** New ops take over the provenance entries (`module`,
`module_type`) of the matched ops: by default each from the root, or, where the
root has none, from the nearest matched op that has it; `provenance %c` puts
the op defining `%c` first, so a fused kernel is attributed to the conv or
linear it replaces rather than to the activation at the root of the chain. An
entry the replacement sets itself wins. New ops take the root's location.

**target.** `target has F` holds when the target the rules are applied for has
the CPU feature F (`avx2`, `avx512`, `avx512_vnni`, `avx_vnni`, `amx`, `neon`,
`dotprod`, `i8mm`: `qir.target`), `not target has F` when it lacks it; an
unknown feature is an error when the rules are loaded. The target is what
`apply(..., target=)` or `patterns(target)` is given (a `qir.target.Target` or
its name; a backend's `lower-NAME{target=...}` passes its own), else the one
the module records, else the host.

**templates.** `for NAME in [v1, v2, ...] { ... }` repeats what it holds (rules,
loops, includes) once per value, in order, `for (A, B) in [(a1, b1), ...]` binds
several names per step, and `{NAME}` anywhere in the body but comments stands
for the text of the value: in rule and op names (`conv{rank}d`), strings
(`aten.op "{fn}.default"`), literals (`post = {post}` with `none` or `"relu"`),
expressions (`engine = {engine}` with `conv_engine(%y)`), and a loop's own list
(`for rank in {ranks}`). `include "path" with NAME = value, ...` (the path
relative to the including file; the list ends at the end of a line not ending
in `,`) reads another file's rules as if written there, with those parameters:
one file serves every backend whose kernels differ only in their dialect and
packing. Expansion keeps every character's place: an error in an expanded rule
is reported where the template says it (for a substituted value, where its
`{NAME}` stands), with the values it was expanded for: `(where rank = 3;
included from qnnpack.rules:9:1)`. An unknown `{NAME}`, a loop name its body
never uses, an include parameter the file never uses, a name bound twice, a
tuple of the wrong size, an include cycle or a missing file are errors at their
place. Expanded rules are ordinary rules: their names must be unique, and
benefit and file order (the order of expansion) rank them.

**benefit.** Among the rules rooted at one op name (one overload for
`aten.op`), higher benefit is tried first, then file order; the first rule
that matches applies. `apply` walks each block from its end (consumers
first), so a rule rooted at the end of a chain sees the whole chain before a
rule rooted inside it rewrites part of it, and repeats to a fixed point.

**functions.** Python callables by name (`functions.BUILTINS`, plus what a
backend passes). Arguments are xDSL objects: an `SSAValue` for `%v`, a tuple
of them for a variadic `%vs`, the bound `Attribute` (or None) for `$c`, an
`Attribute` for a literal. Results are attributes or plain Python (int →
`i64`, float → `f64`, str, bool, lists of ints or floats → `array<...>`,
None); see `functions.to_attribute`. A function that raises while rules run
is reported as a `qir.errors.OpError` naming the op, the rule and the call. A
function with a keyword-only parameter `target` is also given the target (as
`target has F` sees it), so a choice such as the engine to pack for can
depend on the CPU (`qir.lowering.x86.engines.linear_engine`).

**API.** `RuleSet.from_file(path, functions, ctx, dialects=, ops=)` (compiled
once per path, modification time and arguments) or `RuleSet.from_text(text,
filename, ...)`; `RuleSet.combine` for several files. `ruleset.apply(module,
extra_patterns, target=)` runs the rules, then any Python patterns, to a fixed
point and returns a `Counter` of rule name → times applied;
`ruleset.patterns(target)` gives the one dispatching `RulePattern` for a walker
of one's own. `names`, `rules_for(op)`, `roots` and `ruleset[name]` (a `Rule`:
`benefit`, `root`, `filename`, `line`, `match(op, target)`) describe the rules;
`dependencies` lists the files a rule set includes (a change to one recompiles
it). `verify=True` checks each op as a rule builds it (the error then names
the rule); by default the pass manager's verification after the pass is the
check, as in MLIR's driver.

**errors.** Every error in a rule file — syntax, templates, unknown op,
function or target feature, wrong operand or result count or arity where the
definition says, undefined
`%name`, unbound `$cap`, bad literal text (xDSL's message, at its place in
the literal), an unconnected match op, a root result not redefined,
duplicate names — is a `qir.errors.ParseFailure` at `file:line:col`.
"""

from qir.lowering.rules.functions import BUILTINS, to_attribute
from qir.lowering.rules.matcher import Rule, RulePattern
from qir.lowering.rules.ruleset import RuleSet, rules_context

__all__ = ["BUILTINS", "Rule", "RulePattern", "RuleSet", "rules_context", "to_attribute"]
