"""Messages refused input carries to a person: an English msgid with parameters, translated where it
is shown (pages), read as English elsewhere (APIs, logs, the CLI). Core modules raise these; the
workspace (hub.web.i18n, which re-exports them) translates them. Here, below hub.web, so the
contact and identity rules can use them without importing the web app."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


class Translatable(Exception):
    """An error a page can show in the user's language: `message` is an English msgid (marked with
    N_) with %(name)s fields that `params` fill. str() is the English text (APIs, logs, the CLI);
    `translated(gettext)` is what a page shows."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(self._english())

    def _english(self) -> str:
        """What str() says (a subclass may word it for APIs and logs)."""
        return self.translated(str)

    def translated(self, gettext: Callable[[str], str]) -> str:
        text = gettext(self.message)
        if not self.params:
            return text
        return text % {key: self._param(key, value, gettext) for key, value in self.params.items()}

    def _param(self, key: str, value: Any, gettext: Callable[[str], str]) -> Any:
        """A parameter as the message shows it (a subclass translates its own words here)."""
        return value


class TranslatableError(Translatable, ValueError):
    """A Translatable that is a ValueError: refused input (pydantic validators wrap it, 422s)."""


class FieldError(TranslatableError):
    """A refused value of one input, in plain words: `field` is its dotted path (what API clients
    read), the message names it by its visible label (`%(label)s`, a msgid) and says what to do."""

    def __init__(self, field: str, message: str, *, label: str | None = None, **params: Any) -> None:
        self.field = field
        super().__init__(message, label=label or DEFAULT_LABEL, **params)

    def translated(self, gettext: Callable[[str], str]) -> str:
        # A message passed through from elsewhere (a library's words) has no fields: never %-format it.
        return super().translated(gettext) if "%(" in self.message else gettext(self.message)

    def _param(self, key: str, value: Any, gettext: Callable[[str], str]) -> Any:
        return gettext(value) if key == "label" and isinstance(value, str) else value


DEFAULT_LABEL = N_("this field")
# pydantic's error types as sentences a person can act on; %(label)s is the field's visible label,
# the other fields come from the error's ctx. A type not listed here reads UNKNOWN_PROBLEM.
PYDANTIC_MESSAGES = {
    "missing": N_("Fill in “%(label)s”."),
    "string_too_short": N_("Fill in “%(label)s”."),
    "string_too_long": N_("“%(label)s” is too long: at most %(max_length)s characters. Shorten it."),
    "too_long": N_("“%(label)s” has too many entries: at most %(max_length)s."),
    "string_type": N_("Fill in “%(label)s” with text."),
    "string_pattern_mismatch": N_("“%(label)s” has characters that are not allowed here. Remove them."),
    "literal_error": N_("Choose “%(label)s” from the list."),
    "enum": N_("Choose “%(label)s” from the list."),
    "int_parsing": N_("Enter a whole number in “%(label)s”."),
    "int_type": N_("Enter a whole number in “%(label)s”."),
    "int_from_float": N_("Enter a whole number in “%(label)s”."),
    "float_parsing": N_("Enter a number in “%(label)s”."),
    "float_type": N_("Enter a number in “%(label)s”."),
    "decimal_parsing": N_("Enter a number in “%(label)s”."),
    "decimal_type": N_("Enter a number in “%(label)s”."),
    "bool_parsing": N_("Choose yes or no in “%(label)s”."),
    "greater_than": N_("“%(label)s” must be more than %(gt)s."),
    "greater_than_equal": N_("“%(label)s” must be at least %(ge)s."),
    "less_than": N_("“%(label)s” must be less than %(lt)s."),
    "less_than_equal": N_("“%(label)s” must be at most %(le)s."),
    "datetime_parsing": N_("Enter a date and time in “%(label)s”."),
    "datetime_from_date_parsing": N_("Enter a date and time in “%(label)s”."),
    "date_parsing": N_("Enter a date in “%(label)s”."),
    "timezone_aware": N_("Enter a date and time in “%(label)s”."),
    "json_invalid": N_("The form could not be read. Reload the page and try again."),
    "extra_forbidden": N_("The form sent a field the hub does not know. Reload the page and try again."),
}
UNKNOWN_PROBLEM = N_("Check “%(label)s”.")
_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})


def field_errors(errors: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> list[FieldError]:
    """pydantic's errors (`exc.errors()`) as FieldErrors, each field named by its label.

    `labels` maps a dotted path ("display_name", "identities.0.value") or its last part to a msgid;
    a validator that raised a TranslatableError keeps its own words (a FieldError keeps its field)."""
    labels = labels or {}
    found: list[FieldError] = []
    for err in errors:
        parts = [str(part) for part in err.get("loc", ())]
        if parts and parts[0] in _REQUEST_PARTS:
            parts = parts[1:]
        field = ".".join(parts)
        label = labels.get(field) or (labels.get(parts[-1]) if parts else None) or DEFAULT_LABEL
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, Translatable):
            inner = cause.field if isinstance(cause, FieldError) else ""
            own = cause.params.get("label")
            chosen = labels.get(inner) or (own if own and own != DEFAULT_LABEL else None) or label
            params = {k: v for k, v in cause.params.items() if k != "label"}
            found.append(FieldError(".".join(filter(None, [field, inner])), cause.message, label=chosen, **params))
        else:
            message = PYDANTIC_MESSAGES.get(str(err.get("type", "")), UNKNOWN_PROBLEM)
            found.append(FieldError(field, message, label=label,
                                    **{k: v for k, v in ctx.items() if k != "error" and f"%({k})s" in message}))
    return found
