"""A Jinja2 sandbox for templates that marketers write: it cannot reach the server nor run forever.

On top of `ImmutableSandboxedEnvironment` (no private or dunder attributes, no mutation of lists and
dicts, `str.format` sandboxed), every render has a budget:

- operations: each call, attribute or item lookup, arithmetic, and each loop iteration costs one;
  a render that spends more than `MAX_OPERATIONS` (or runs longer than `MAX_SECONDS`) stops;
- size: no value may grow past `MAX_VALUE_CHARS` (`*`, `+`, `~`, filters), and all output, the
  buffered kind too (`{% set %}` blocks, macros, filter blocks), counts against `MAX_OUTPUT_CHARS`;
- reach: only a whitelist of filters and globals; `range` is capped; `%` formatting of strings (whose
  width can ask for gigabytes) is refused.

The counters live in a ContextVar, so one shared environment (and its cache of compiled templates)
serves many threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from hub.web.i18n import N_, Translatable

MAX_OPERATIONS = 200_000
MAX_SECONDS = 2.0
MAX_VALUE_CHARS = 200_000
MAX_ITEMS = 10_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 10_000
MAX_WIDTH = 500
MAX_INT_BITS = 4096
MAX_DECIMAL_EXPONENT = 1000


class LimitExceeded(Translatable):  # noqa: N818
    """A render went over one of its limits (the message says which).

    Not a ValueError on purpose: Jinja's filters swallow ValueError (`int`, `float`), and a limit
    must end the render wherever it is hit."""


@dataclass
class Budget:
    operations: int = 0
    output: int = 0
    started: float = field(default_factory=time.monotonic)
    max_output: int = MAX_OUTPUT_CHARS

    def spend(self, n: int = 1) -> None:
        self.operations += n
        if self.operations > MAX_OPERATIONS:
            raise LimitExceeded(N_("the template did more than %(limit)s operations (a loop too large?)"), limit=MAX_OPERATIONS)
        if self.operations % 512 == 0 and time.monotonic() - self.started > MAX_SECONDS:
            raise LimitExceeded(N_("the template ran longer than %(limit)s seconds"), limit=f"{MAX_SECONDS:g}")

    def write(self, chars: int) -> None:
        self.output += chars
        if self.output > self.max_output:
            raise LimitExceeded(N_("the template produced more than %(limit)s characters"), limit=self.max_output)


_budget: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def current_budget() -> Budget:
    budget = _budget.get()
    if budget is None:  # rendering outside `budgeted()` still gets limits
        budget = Budget()
        _budget.set(budget)
    return budget


class budgeted:  # noqa: N801 - used as a context manager
    """A fresh budget for one render."""

    def __init__(self, max_output: int = MAX_OUTPUT_CHARS) -> None:
        self.budget = Budget(max_output=max_output)

    def __enter__(self) -> Budget:
        self.token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc: object) -> None:
        _budget.reset(self.token)


def check_size(value: Any) -> Any:
    """Refuse strings and containers past the limits."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise LimitExceeded(N_("a value grew past %(limit)s characters"), limit=MAX_VALUE_CHARS)
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        if len(value) > MAX_ITEMS:
            raise LimitExceeded(N_("a list grew past %(limit)s items"), limit=MAX_ITEMS)
    elif isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise LimitExceeded(N_("a number grew too large"))
    elif isinstance(value, Decimal):
        if value.is_finite() and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
            raise LimitExceeded(N_("a number grew too large"))
    return value


class _OutputBuffer(list):  # type: ignore[type-arg]
    """The list buffered output goes to ({% set %} blocks, macros): it charges the budget."""

    def append(self, item: Any) -> None:
        current_budget().write(len(item) if isinstance(item, str) else 1)
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        items = list(items)
        current_budget().write(sum(len(i) if isinstance(i, str) else 1 for i in items))
        super().extend(items)


def _guard_iter(iterable: Any) -> Iterator[Any]:
    budget = current_budget()
    for item in iterable:
        budget.spend()
        yield item


def _range(*args: int) -> Iterator[int]:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise LimitExceeded(N_("range() is limited to %(limit)s numbers"), limit=MAX_RANGE)
    return _guard_iter(rng)


class _CheckedCodeGenerator(CodeGenerator):
    """Jinja's code generator with the budget's hooks: loops, `~` concatenation, filters, buffers."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not getattr(node, "_guarded", False):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("guard_iter"), [node.iter], [], None, None,
                                   lineno=node.lineno)
            node._guarded = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Filter(node, frame)
        self.write(")")


def _width(name: str, width: Any) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise LimitExceeded(f"{name}() width is limited to {MAX_WIDTH}")


def _wrap_center(value: Any, width: int = 80) -> str:
    _width("center", width)
    return FILTERS["center"](value, width)


def _wrap_indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    _width("indent", width)
    if isinstance(width, str) and len(width) > MAX_WIDTH:
        raise LimitExceeded(f"indent() width is limited to {MAX_WIDTH}")
    return FILTERS["indent"](s, width, first, blank)


def _wrap_replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    text, old_s, new_s = str(s), str(old), str(new)
    hits = text.count(old_s) if old_s else len(text) + 1
    if count is not None:
        hits = min(hits, max(count, 0))
    if len(text) + hits * max(len(new_s) - len(old_s), 0) > MAX_VALUE_CHARS:
        raise LimitExceeded(f"replace() would grow a value past {MAX_VALUE_CHARS} characters")
    return FILTERS["replace"](eval_ctx, s, old, new, count)


def _wrap_join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    check_size(items)
    if sum(len(str(i)) for i in items) + len(d) * len(items) > MAX_VALUE_CHARS:
        raise LimitExceeded(f"join() would make a value longer than {MAX_VALUE_CHARS} characters")
    return FILTERS["join"](eval_ctx, items, d, attribute)


def _wrap_batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if linecount > MAX_ITEMS:
        raise LimitExceeded(f"batch() size is limited to {MAX_ITEMS}")
    return FILTERS["batch"](value, linecount, fill_with)


def _wrap_slice(value: Any, slices: int, fill_with: Any = None) -> Any:
    if slices > MAX_ITEMS:
        raise LimitExceeded(f"slice() count is limited to {MAX_ITEMS}")
    return FILTERS["slice"](value, slices, fill_with)


for _fn, _src in ((_wrap_replace, "replace"), (_wrap_join, "join")):
    # Keep Jinja's pass_eval_context / pass_environment markers.
    if hasattr(FILTERS[_src], "jinja_pass_arg"):
        _fn.jinja_pass_arg = FILTERS[_src].jinja_pass_arg  # type: ignore[attr-defined]

# Filters a message needs; left out: format (a width can ask for gigabytes), safe (contact data must
# stay escaped), random, pprint, xmlattr, urlize, wordwrap, filesizeformat, map and the attr-driven ones
# that add nothing here.
SAFE_FILTERS = ("abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
                "forceescape", "int", "items", "last", "length", "list", "lower", "max", "min", "reject",
                "reverse", "round", "select", "sort", "string", "striptags", "sum", "title", "trim", "unique",
                "upper", "urlencode", "wordcount", "groupby", "selectattr", "rejectattr", "attr", "tojson",
                "truncate")
WRAPPED_FILTERS = {"center": _wrap_center, "indent": _wrap_indent, "replace": _wrap_replace, "join": _wrap_join,
                   "batch": _wrap_batch, "slice": _wrap_slice}
# Methods of plain values a template may call. Others are refused: ljust/zfill/expandtabs/translate
# and str.format take a size, join/replace have filters with limits, and Decimal.scaleb makes numbers
# whose conversion to int never ends.
SAFE_METHODS = frozenset({
    "lower", "upper", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip", "rstrip", "split",
    "rsplit", "splitlines", "startswith", "endswith", "count", "find", "rfind", "index", "rindex", "partition",
    "rpartition", "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "isupper",
    "islower", "istitle", "isnumeric", "isdecimal", "keys", "values", "items", "get", "strftime", "isoformat",
    "date", "weekday", "isoweekday", "is_integer",
})
_PLAIN = (str, bytes, dict, list, tuple, set, frozenset, int, float, Decimal, datetime, date)


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with budgets; `autoescape` is on for HTML and off for subjects and plain text."""

    code_generator_class = _CheckedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, auto_reload=False, cache_size=0,
                         keep_trailing_newline=False)
        self.filters = {name: FILTERS[name] for name in SAFE_FILTERS}
        self.filters.update(WRAPPED_FILTERS)
        self.globals = {"range": _range, "dict": dict}
        self.guard_iter = _guard_iter
        self.output_buffer = _OutputBuffer
        self.checked = check_size

    # Every lookup and call costs one operation.
    def getattr(self, obj: Any, attribute: str) -> Any:
        current_budget().spend()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current_budget().spend()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        current_budget().spend()
        for value in (*args, *kwargs.values()):
            check_size(value)
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        current_budget().spend()
        if operator == "%" and isinstance(left, str):
            raise LimitExceeded("'%' formatting of text is not available in messages; join values with ~")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * max(times, 0) > (MAX_VALUE_CHARS if isinstance(seq, str) else MAX_ITEMS):
                        raise LimitExceeded("repeating a value that many times would make it too large")
        if operator == "**":
            if isinstance(right, (int, Decimal)) and abs(right) > 64:
                raise LimitExceeded("exponents above 64 are not allowed")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * max(right, 0) > 4096:
                raise LimitExceeded("that power is too large")
        return check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> None:
        # str.format and format_map are refused outright (is_safe_attribute), not sandboxed: a field
        # width ("{:999999999}") asks for gigabytes even when no attribute is reached.
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, _PLAIN) and callable(value) and attr not in SAFE_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)


__all__ = ["LimitedEnvironment", "LimitExceeded", "budgeted", "check_size", "Markup"]
