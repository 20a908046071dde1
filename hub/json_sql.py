"""JSON access that compiles to the right SQL on SQLite (json_extract, json_each) and PostgreSQL (jsonb).

The constructs are dialect-neutral until compiled, so `contact_ids_query` builds one Select that runs
on either store. Paths are bound parameters, never spliced into SQL; keys are also restricted by the
segment definition (`KEY_PATTERN`), because SQLite's JSON path syntax has no escaping we could trust.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# Letters (any script), digits, '_', '-' and spaces: safe inside a quoted SQLite JSON path.
KEY_PATTERN = r"^[\w\- ]{1,100}$"
_KEY = re.compile(KEY_PATTERN)


def _sqlite_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{key}"' for key in path)


class _JsonPath(FunctionElement):  # type: ignore[type-arg]
    """Base: clauses are (column, sqlite path, *pg keys), all but the column bound as parameters."""

    inherit_cache = True

    def __init__(self, column: Any, *path: str) -> None:
        for key in path:
            if not _KEY.match(key):
                raise ValueError(f"JSON key {key!r} may hold only letters, digits, '_', '-' and spaces")
        super().__init__(column, sa.literal(_sqlite_path(path), sa.Text()), *[sa.literal(k, sa.Text()) for k in path])


class json_text(_JsonPath):  # noqa: N801 - reads like a SQL function
    """The value at the path as text (strings unquoted); NULL when missing."""

    type = sa.Text()
    inherit_cache = True


class json_number(_JsonPath):  # noqa: N801
    """The value at the path as a number: JSON numbers, and strings holding a decimal ("1500.00")."""

    type = sa.Numeric()
    inherit_cache = True


class json_kind(_JsonPath):  # noqa: N801
    """'string', 'number', 'true', 'false', 'null', 'object' or 'array'; NULL when missing."""

    type = sa.Text()
    inherit_cache = True


class json_array_has(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """Whether the JSON array in the column holds the string value."""

    type = sa.Boolean()
    inherit_cache = True

    def __init__(self, column: Any, value: str) -> None:
        super().__init__(column, sa.literal(value, sa.Text()))


class folded_contains(FunctionElement):  # type: ignore[type-arg]  # noqa: N801
    """Case-insensitive substring test in any script (SQLite's lower() folds ASCII only)."""

    type = sa.Boolean()
    inherit_cache = True

    def __init__(self, expression: Any, needle: str) -> None:
        escaped = needle.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        super().__init__(expression, sa.literal(f"%{escaped}%", sa.Text()))


def _parts(element: FunctionElement, compiler: Any, **kw: Any) -> list[str]:  # type: ignore[type-arg]
    return [compiler.process(clause, **kw) for clause in element.clauses]


def _pg_value(parts: list[str]) -> str:
    column, _sqlite, *keys = parts
    return "(" + column + "".join(f" -> CAST({key} AS TEXT)" for key in keys) + ")"


@compiles(json_text, "sqlite")
def _text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    column, path, *_ = _parts(element, compiler, **kw)
    return f"json_extract({column}, {path})"


@compiles(json_text, "postgresql")
def _text_pg(element: json_text, compiler: Any, **kw: Any) -> str:
    return f"({_pg_value(_parts(element, compiler, **kw))} #>> '{{}}')"


@compiles(json_number, "sqlite")
def _number_sqlite(element: json_number, compiler: Any, **kw: Any) -> str:
    column, path, *_ = _parts(element, compiler, **kw)
    kind, value = f"json_type({column}, {path})", f"json_extract({column}, {path})"
    return (f"(CASE WHEN {kind} IN ('integer', 'real') THEN {value} "
            f"WHEN {kind} = 'text' AND {value} GLOB '*[0-9]*' AND {value} NOT GLOB '*[^0-9.-]*' "
            f"THEN CAST({value} AS REAL) END)")


@compiles(json_number, "postgresql")
def _number_pg(element: json_number, compiler: Any, **kw: Any) -> str:
    value = _pg_value(_parts(element, compiler, **kw))
    text = f"({value} #>> '{{}}')"
    return (f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN CAST({text} AS NUMERIC) "
            f"WHEN jsonb_typeof({value}) = 'string' AND {text} ~ '^-?[0-9]+(\\.[0-9]+)?$' "
            f"THEN CAST({text} AS NUMERIC) END)")


@compiles(json_kind, "sqlite")
def _kind_sqlite(element: json_kind, compiler: Any, **kw: Any) -> str:
    column, path, *_ = _parts(element, compiler, **kw)
    kind = f"json_type({column}, {path})"
    return (f"(CASE {kind} WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"ELSE {kind} END)")


@compiles(json_kind, "postgresql")
def _kind_pg(element: json_kind, compiler: Any, **kw: Any) -> str:
    value = _pg_value(_parts(element, compiler, **kw))
    return f"(CASE jsonb_typeof({value}) WHEN 'boolean' THEN ({value} #>> '{{}}') ELSE jsonb_typeof({value}) END)"


@compiles(json_array_has, "sqlite")
def _has_sqlite(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, value = _parts(element, compiler, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(json_array_has, "postgresql")
def _has_pg(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, value = _parts(element, compiler, **kw)
    return f"({column} @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(folded_contains, "sqlite")
def _contains_sqlite(element: folded_contains, compiler: Any, **kw: Any) -> str:
    expression, pattern = _parts(element, compiler, **kw)
    return f"(hub_fold({expression}) LIKE {pattern} ESCAPE '\\')"


@compiles(folded_contains, "postgresql")
def _contains_pg(element: folded_contains, compiler: Any, **kw: Any) -> str:
    expression, pattern = _parts(element, compiler, **kw)
    return f"({expression} ILIKE {pattern} ESCAPE '\\')"
