"""System prompt templates, rendered in a sandbox with bounded time, work and size.

The template comes from the project's config; `system_prompt_args` come from the request and are
only ever data: they are passed as variables, never parsed as template source, so `{{ 7*7 }}` or
`{{ ''.__class__ }}` in an argument stays those characters.

The template language is Jinja's immutable sandbox, narrowed further:
- checked when the config is validated (`check_template`) and again before first use: no private
  names or attributes (`__class__`, `_x`), no recursive loops, no macros, blocks, call/filter/set
  blocks, include/import/extends (the constructs that build strings out of sight of the output
  cap), and only the filters in `FILTERS`;
- at render time, a budget: at most `MAX_STEPS` loop iterations, calls and operations, at most
  `MAX_RENDER_S` seconds, no intermediate value over `MAX_VALUE_CHARS` (checked *before* `*`, `+`,
  `~`, `join`, `replace`, `indent` build it), and at most `MAX_OUTPUT_CHARS` of output. Only a
  whitelist of methods on strings, lists and dicts can be called; `str.format` and `%` are refused.
A missing argument is a 400 that names it; an exceeded budget is a 400 too (arguments drive it).
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as _JINJA_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from handler.errors import ConfigError, InvalidRequest

MAX_TEMPLATE_CHARS = 64_000
MAX_OUTPUT_CHARS = 100_000
MAX_VALUE_CHARS = 1_000_000
MAX_STEPS = 100_000
MAX_RENDER_S = 0.5
MAX_RANGE = 10_000
MAX_INT_BITS = 4096

_MISSING = re.compile(r"'([^']+)' is undefined")

# Filters a system prompt may use: none of them can build a value much larger than its inputs
# (those that could are size-checked below). Left out: center, wordwrap, format, batch, attr,
# pprint, urlize, xmlattr, random, safe, ...
_ALLOWED_FILTERS = [
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "sort",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "wordcount",
]

_SAFE_ATTRS: dict[type, frozenset[str]] = {
    str: frozenset(
        [
            "upper",
            "lower",
            "title",
            "capitalize",
            "casefold",
            "swapcase",
            "strip",
            "lstrip",
            "rstrip",
            "startswith",
            "endswith",
            "split",
            "rsplit",
            "splitlines",
            "partition",
            "rpartition",
            "find",
            "rfind",
            "index",
            "rindex",
            "count",
            "removeprefix",
            "removesuffix",
            "replace",
            "join",
            "isdigit",
            "isalpha",
            "isalnum",
            "isspace",
            "islower",
            "isupper",
            "istitle",
            "isnumeric",
            "isdecimal",
        ]
    ),
    dict: frozenset({"keys", "values", "items", "get"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    bool: frozenset(),
    int: frozenset({"real", "imag"}),
    float: frozenset({"real", "imag", "is_integer"}),
}

# Nodes that buffer output into a value (out of the output cap's sight) or load other templates.
_REFUSED_NODES: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.AssignBlock: "block assignments ({% set x %}...{% endset %})",
    nodes.Block: "blocks",
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
}


class RenderBudgetExceeded(SecurityError):
    pass


@dataclass
class _Budget:
    deadline: float
    steps: int = MAX_STEPS
    reason: str = field(default="")

    def charge(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise RenderBudgetExceeded(f"more than {MAX_STEPS} steps")
        if time.perf_counter() > self.deadline:
            raise RenderBudgetExceeded(f"longer than {int(MAX_RENDER_S * 1000)} ms")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _charge() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.charge()


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _value_ok(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise RenderBudgetExceeded(f"{what} would build a value over {MAX_VALUE_CHARS} characters")


# --- size-checked filters -----------------------------------------------------------------------


def _checked_join(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        _value_ok(len(str(d)) * max(len(items) - 1, 0) + sum(_size(i) for i in items), "join")
        return original(eval_ctx, items, d, attribute)

    return join


def _replace_size(s: str, old: str, new: str, count: int | None) -> int:
    hits = len(s) + 1 if old == "" else s.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _checked_replace(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
        _value_ok(_replace_size(str(s), str(old), str(new), count), "replace")
        return original(eval_ctx, s, old, new, count)

    return replace


def _checked_indent(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def indent(s: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        text = str(s)
        pad = len(width) if isinstance(width, str) else int(width)
        _value_ok(len(text) + max(pad, 0) * (text.count("\n") + 1), "indent")
        return original(s, width, *args, **kwargs)

    return indent


def _charged(original: Callable[..., Any]) -> Callable[..., Any]:
    """Every filter call costs a step; numeric arguments can't ask for huge outputs."""

    @functools.wraps(original)  # keeps Jinja's pass_context / pass_environment markers
    def filter_(*args: Any, **kwargs: Any) -> Any:
        _charge()
        for arg in (*args[1:], *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE_CHARS:
                raise RenderBudgetExceeded(f"filter argument {arg} is too large")
        return original(*args, **kwargs)

    return filter_


def _filters() -> dict[str, Callable[..., Any]]:
    special = {"join": _checked_join, "replace": _checked_replace, "indent": _checked_indent}
    out = {}
    for name in _ALLOWED_FILTERS:
        f = _JINJA_FILTERS[name]
        out[name] = _charged(special[name](f) if name in special else f)
    return out


FILTERS = _filters()


# --- globals the transformed template calls -------------------------------------------------------


def _iter(iterable: Any) -> Iterator[Any]:
    """What every `{% for %}` loops over: the same items, one budget step each."""
    for item in iterable:
        _charge()
        yield item


def _concat(*parts: Any) -> str:
    """`a ~ b`: checked before the string is built."""
    _charge()
    texts = [str(p) for p in parts]
    _value_ok(sum(len(t) for t in texts), "~")
    return "".join(texts)


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise RenderBudgetExceeded(f"range of {len(r)} items (the limit is {MAX_RANGE})")
    return r


class _Rewrite(NodeTransformer):
    """Route loops and `~` through the budgeted `_gw_iter` / `_gw_concat`."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name("_gw_iter", "load"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.Name("_gw_concat", "load"), list(node.nodes), [], None, None, lineno=node.lineno
        )


class _SandboxEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        for kind in type(obj).__mro__:
            allowed = _SAFE_ATTRS.get(kind)
            if allowed is not None:
                return attr in allowed
        return True  # Jinja's own objects (loop, namespace): their public attributes

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return None  # `str.format` is not whitelisted: `{:>999999999}` would allocate a gigabyte

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _charge()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    _value_ok(len(seq) * max(n, 0), "*")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise RenderBudgetExceeded("integer too large")
        elif operator == "**":
            big = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
            if big and right * left.bit_length() > MAX_INT_BITS:
                raise RenderBudgetExceeded("integer too large")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _value_ok(len(left) + len(right), "+")
        elif operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed in templates")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _charge()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "replace" and len(args) >= 2:
                count = args[2] if len(args) > 2 else kwargs.get("count")
                _value_ok(_replace_size(owner, str(args[0]), str(args[1]), count), "replace")
            elif name == "join" and args:
                items = list(args[0])
                _value_ok(len(owner) * max(len(items) - 1, 0) + sum(_size(i) for i in items), "join")
                args = (items, *args[1:])
        return super().call(__context, __obj, *args, **kwargs)


def _environment() -> _SandboxEnvironment:
    env = _SandboxEnvironment(undefined=StrictUndefined, autoescape=False, optimized=False)
    env.filters = FILTERS  # type: ignore[assignment]
    env.globals = {
        "range": _range,
        "dict": dict,
        "namespace": Namespace,
        "_gw_iter": _iter,
        "_gw_concat": _concat,
    }
    return env


_env = _environment()


def check_template(source: str) -> nodes.Template:
    """The template's syntax tree, or ValueError saying what the sandbox refuses (config validation)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template does not compile: {exc.message}") from None
    for node in tree.find_all(nodes.Node):
        refused = next((what for kind, what in _REFUSED_NODES.items() if isinstance(node, kind)), None)
        if refused:
            raise ValueError(f"template uses {refused}, which system prompt templates don't support")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise ValueError(f"template accesses the private attribute {node.attr!r}")
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            raise ValueError(f"template accesses the private item {node.arg.value!r}")
        if isinstance(node, nodes.Name) and (node.name.startswith("_") or node.name == "self"):
            raise ValueError(f"template uses the private name {node.name!r}")
        if isinstance(node, nodes.For) and node.recursive:
            raise ValueError("template uses a recursive loop")
    try:  # unknown filters and tests are found here
        _env.compile(tree)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template does not compile: {exc.message}") from None
    return tree


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    try:
        tree = check_template(source)
    except ValueError as exc:
        raise ConfigError(f"the project's system prompt is refused: {exc}") from None
    tree = _Rewrite().visit(tree)
    tree.set_environment(_env)
    return _env.template_class.from_code(_env, _env.compile(tree), _env.make_globals(None), None)


def render_system_prompt(source: str, args: dict[str, Any] | None) -> str:
    template = _compile(source)
    token = _budget.set(_Budget(deadline=time.perf_counter() + MAX_RENDER_S))
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(**(args or {})):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise InvalidRequest(
                    f"system_prompt_args: the rendered system prompt exceeds {MAX_OUTPUT_CHARS} characters",
                    param="system_prompt_args",
                )
            _charge()
            out.append(chunk)
        return "".join(out)
    except UndefinedError as exc:
        missing = _MISSING.search(str(exc.message or ""))
        name = missing.group(1) if missing else "an argument"
        raise InvalidRequest(
            f"system_prompt_args is missing {name!r}, which the project's system prompt template uses",
            param=f"system_prompt_args.{name}" if missing else "system_prompt_args",
        ) from None
    except RenderBudgetExceeded as exc:
        raise InvalidRequest(
            f"system_prompt_args: rendering the system prompt exceeded its budget ({exc})",
            param="system_prompt_args",
        ) from None
    except SecurityError as exc:
        raise InvalidRequest(
            f"system_prompt_args: rendering refused by the sandbox ({exc})", param="system_prompt_args"
        ) from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as exc:
        raise InvalidRequest(
            f"system_prompt_args: the template could not be rendered with these arguments ({type(exc).__name__})",
            param="system_prompt_args",
        ) from None
    finally:
        _budget.reset(token)
