"""Rendering message templates for one contact: per-language variants, a sandbox, clear errors.

`render_message` picks the variant for the contact's locale (else the template's default locale),
renders its parts in the limited sandbox (`campaigns.message_templates.sandbox`) and returns the
outbox content. The parts are the channel's own (`hub.channel.Channel.parts`: subject, html, text for
email; text for SMS and Telegram), so a template carries only what its channel can. HTML parts
autoescape every value; subjects and plain text do not (they are not HTML), and a subject is kept
on one line.
Any failure, a syntax error, an undefined variable, a refused attribute or a spent budget, is a
`TemplateRenderError` that names the part and the line.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError
from sqlalchemy.orm import Session

from campaigns.message_templates.sandbox import LimitedEnvironment, LimitExceeded, budgeted
from hub.channel import ContentPart
from hub.channel_hooks import contact_channels
from hub.web.i18n import N_, TranslatableError

LOCALES = ("ru", "en")
# The longest template source of a part (what is rendered is the channel's ContentPart.max_chars).
MAX_PART_CHARS = {"subject": 2_000, "html": 200_000, "text": 100_000}
MAX_OUTPUT = 1_000_000


def channel_names() -> list[str]:
    """The installed channels a template can be written for: those that send to contacts."""
    return list(contact_channels())


def channel_parts(channel: str) -> tuple[ContentPart, ...]:
    """What a message on `channel` carries; TemplateRenderError naming the installed channels otherwise."""
    found = contact_channels().get(channel)
    if found is None:
        raise TemplateRenderError(N_("channel must be one of %(channels)s"), part="channel",
                                  channels=", ".join(channel_names()))
    return found.parts

_html_env = LimitedEnvironment(autoescape=True)
_text_env = LimitedEnvironment(autoescape=False)


class TemplateRenderError(TranslatableError):
    """A template that cannot be used or rendered; says which part, which line and what is wrong.

    `message` is a msgid with parameters, or Jinja's own words (a syntax error), which stay English."""

    def __init__(self, message: str, *, part: str | None = None, line: int | None = None, **params: Any) -> None:
        self.part = part
        self.line = line
        super().__init__(message, **params)

    @property
    def reason(self) -> str:
        """What is wrong, in English, without where."""
        return super().translated(str)

    def _english(self) -> str:
        # For the API and logs the part is named by its path: "ru.html, line 2: …".
        where = ", ".join(x for x in (self.part, f"line {self.line}" if self.line else None) if x)
        return f"{where}: {self.reason}" if where else self.reason

    def translated(self, gettext: Callable[[str], str]) -> str:
        """"HTML body (ru), line 2: …" in the reader's language."""
        reason = super().translated(gettext)
        where = [self._part_label(gettext)] if self.part else []
        if self.line:
            where.append(gettext("line %(line)s") % {"line": self.line})
        return f"{', '.join(where)}: {reason}" if where else reason

    def _part_label(self, gettext: Callable[[str], str]) -> str:
        """"ru.html" as "HTML body (ru)" in the reader's language; other parts by name."""
        locale, _, name = (self.part or "").rpartition(".")
        label = _PART_LABELS.get(name)
        if label and locale in LOCALES:
            return f"{gettext(label)} ({locale})"
        return self.part or ""


def part_labels() -> dict[str, str]:
    """Each part name's label (a msgid), as the installed channels declare them."""
    return {part.name: part.label for channel in contact_channels().values() for part in channel.parts}


class _Labels(dict):  # type: ignore[type-arg]
    """part_labels(), read when first needed (the channels load after this module)."""

    def get(self, key: Any, default: Any = None) -> Any:
        if not self:
            self.update(part_labels())
        return super().get(key, default)


_PART_LABELS = _Labels()


@lru_cache(maxsize=512)
def _compile(source: str, part: str, html: bool) -> Template:
    """A compiled part, cached: a campaign renders the same source for every recipient."""
    env = _html_env if html else _text_env
    code = env.compile(source, name=part, filename=f"<{part}>")
    # Its globals as a plain dict, not the ChainMap over env.globals make_globals gives: every render
    # copies them into its context (~10 µs a part through ChainMap), and the sandbox's never change.
    return env.template_class.from_code(env, code, dict(env.make_globals(None)), None)


def _line_of(exc: BaseException, part: str) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == f"<{part}>":
            return frame.lineno
    return None


def _explain(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """What went wrong, as a msgid and its parameters."""
    if isinstance(exc, SecurityError):
        return N_("not allowed in a message template (%(detail)s)"), {"detail": str(exc)}
    if isinstance(exc, UndefinedError):
        return N_("%(detail)s (check the variable's name; see the list of variables)"), {"detail": str(exc)}
    if isinstance(exc, RecursionError):
        return N_("a macro calls itself too deeply"), {}
    if isinstance(exc, LimitExceeded):
        return exc.message, exc.params
    if isinstance(exc, TemplateError):
        return str(exc), {}
    return "%(kind)s: %(detail)s", {"kind": type(exc).__name__, "detail": str(exc)}


def compile_part(source: str, *, part: str, html: bool) -> Template:
    """Compile one part, or TemplateRenderError naming the line of the syntax error."""
    if not isinstance(source, str):
        raise TemplateRenderError(N_("must be text"), part=part)
    limit = MAX_PART_CHARS.get(part.rsplit(".", 1)[-1], 200_000)
    if len(source) > limit:
        raise TemplateRenderError(N_("is %(length)s characters long; the limit is %(limit)s"), part=part,
                                  length=len(source), limit=limit)
    try:
        return _compile(source, part, html)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError("%(detail)s", part=part, line=exc.lineno, detail=exc.message or str(exc)) from None
    except TemplateError as exc:
        raise TemplateRenderError("%(detail)s", part=part, detail=str(exc)) from None


def render_part(source: str, values: Mapping[str, Any], *, part: str, html: bool,
                max_output: int = 1_000_000, chunks: list[str] | None = None) -> str:
    """One part rendered in the sandbox with a fresh budget; `chunks`, when given, gets the pieces
    it was joined from (Markup for values, str for the template's own text)."""
    template = compile_part(source, part=part, html=html)
    chunks = [] if chunks is None else chunks
    try:
        with budgeted(max_output=max_output) as budget:
            for chunk in template.generate(dict(values)):
                budget.write(len(chunk))
                chunks.append(chunk)
    except TemplateRenderError:
        raise
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - every failure of user code becomes a clear error
        message, params = _explain(exc)
        raise TemplateRenderError(message, part=part, line=_line_of(exc, part), **params) from None
    return "".join(chunks)


@dataclass(frozen=True)
class _Source:
    channel: str
    variants: Mapping[str, Mapping[str, Any]]
    default_locale: str | None


def _source_of(template_or_variants: Any, channel: str | None, default_locale: str | None) -> _Source:
    if isinstance(template_or_variants, Mapping):
        variants = template_or_variants
        if channel is None:
            raise TypeError("rendering variants needs the channel they are written for")
        return _Source(channel, variants, default_locale)
    return _Source(channel or template_or_variants.channel, template_or_variants.variants,
                   default_locale or template_or_variants.default_locale)


def choose_locale(variants: Mapping[str, Any], locale: str | None, default_locale: str | None) -> str:
    """The contact's locale when the template has it, else the default, else the first variant."""
    for candidate in (locale, default_locale):
        if candidate and candidate in variants:
            return candidate
    if not variants:
        raise TemplateRenderError(N_("the template has no variants"))
    return next(iter(variants))


def render_message(template_or_variants: Any, *, contact_context: Mapping[str, Any], locale: str | None,
                   extra: Mapping[str, Any] = {}, channel: str | None = None,  # noqa: B006 - read only
                   default_locale: str | None = None, text_from_html: bool = True,
                   html_chunks: list[str] | None = None) -> dict[str, Any]:
    """Outbox content for one contact: each of the channel's parts rendered ({"subject", "html",
    "text"} for email, {"text"} for SMS); an HTML part left empty is None.

    A variant with HTML and no text gets the HTML's text; with `text_from_html=False` its "text" is
    None instead, for a caller that reads the HTML anyway (campaigns, while tracking its links).
    `html_chunks`, when given, gets the pieces of the HTML part (render_part's `chunks`)."""
    source = _source_of(template_or_variants, channel, default_locale)
    parts = channel_parts(source.channel)
    chosen = choose_locale(source.variants, locale, source.default_locale)
    variant = source.variants[chosen]
    values = {**extra, "contact": contact_context, "locale": chosen}
    content: dict[str, Any] = {}
    for part in parts:
        where = f"{chosen}.{part.name}"
        if part.html and not (variant.get(part.name) or "").strip():
            content[part.name] = None
            continue
        limit = part.max_chars
        value = render_part(variant.get(part.name) or "", values, part=where, html=part.html,
                            max_output=limit * 4 if limit else MAX_OUTPUT,
                            chunks=html_chunks if part.html and html_chunks is not None else None)
        if part.one_line:  # a header line: newlines would inject headers or be refused by the mailer
            value = " ".join(value.split())
            if not value:
                raise TemplateRenderError(part.empty or N_("came out empty"), part=where)
            if limit is not None and len(value) > limit:
                raise TemplateRenderError(N_("came out longer than %(limit)s characters"),
                                          part=where, limit=limit)
        elif not part.html:
            value = value.strip()
        content[part.name] = value
    html = next((content[p.name] for p in parts if p.html and content[p.name]), None)
    if "text" in content and not content["text"] and html:
        content["text"] = None if not text_from_html else _text_of(html)
    if not any(content[p.name] for p in parts if not p.one_line) and not html:
        raise TemplateRenderError(N_("the message came out empty"), part=chosen if len(parts) > 1 else f"{chosen}.text")
    return content


def _text_of(html: str) -> str:
    from hub.html import html_to_text

    return html_to_text(html, links=True)  # the text part of a message we send: links keep their address


# --- validating at save time ------------------------------------------------------------------

def validate_variants(channel: str, variants: Any, *, default_locale: str | None = None) -> dict[str, dict[str, str]]:
    """The variants checked (locales, the channel's parts, syntax) and cleaned; TemplateRenderError
    says what is wrong."""
    parts = channel_parts(channel)
    names = [part.name for part in parts]
    bodies = [part for part in parts if not part.one_line]
    if not isinstance(variants, Mapping) or not variants:
        raise TemplateRenderError(N_("add at least one language variant"), part="variants")
    cleaned: dict[str, dict[str, str]] = {}
    for locale, variant in variants.items():
        if locale not in LOCALES:
            raise TemplateRenderError(N_("%(locale)r is not a supported language; use %(locales)s"),
                                      part="variants", locale=locale, locales=", ".join(LOCALES))
        if not isinstance(variant, Mapping):
            raise TemplateRenderError(N_("must be an object with the message parts"), part=locale)
        unknown = set(variant) - set(names)
        if unknown:
            raise TemplateRenderError(N_("%(channel)s messages have no %(unknown)s; their parts are %(parts)s"),
                                      part=locale, channel=channel, unknown=", ".join(sorted(unknown)),
                                      parts=", ".join(names))
        values = {name: variant.get(name) or "" for name in names}
        for name, value in values.items():
            if not isinstance(value, str):
                raise TemplateRenderError(N_("must be text"), part=f"{locale}.{name}")
        for part in parts:
            if part.one_line and not values[part.name].strip():
                raise TemplateRenderError(part.missing or N_("must not be empty"), part=f"{locale}.{part.name}")
        if bodies and not any(values[part.name].strip() for part in bodies):
            if len(bodies) == 1:
                raise TemplateRenderError(bodies[0].missing or N_("must not be empty"), part=f"{locale}.{bodies[0].name}")
            raise TemplateRenderError(N_("write at least one of %(parts)s"), part=locale,
                                      parts=", ".join(part.name for part in bodies))
        for part in parts:
            if values[part.name].strip():
                compile_part(values[part.name], part=f"{locale}.{part.name}", html=part.html)
        html_parts = {part.name for part in parts if part.html}
        cleaned[locale] = {name: value for name, value in values.items() if value.strip() or name not in html_parts}
    if default_locale is not None and default_locale not in cleaned:
        raise TemplateRenderError(N_("the default language %(locale)r has no variant"), part="default_locale",
                                  locale=default_locale)
    return cleaned


def check_renders(channel: str, variants: Mapping[str, Any], *, default_locale: str | None = None,
                  extra: Mapping[str, Any] | None = None) -> None:
    """Render every language variant for the sample contact (TemplateRenderError if one cannot be):
    a template that names an unknown variable, or that the sandbox refuses, is caught when it is
    saved or scheduled, not when the campaign reaches its first recipient."""
    sample = {**SAMPLE_EXTRA, **(extra or {})}
    # Attributes are each hub's own: the sample has any that a template names (an empty value).
    attributes = _AnyAttributes(SAMPLE_CONTEXT["attributes"])
    for locale in variants:
        render_message(variants, contact_context={**SAMPLE_CONTEXT, "attributes": attributes, "locale": locale},
                       locale=locale, extra=sample, channel=channel, default_locale=default_locale)


class _AnyAttributes(dict):  # type: ignore[type-arg]
    def __missing__(self, key: Any) -> str:
        return ""


# --- what a template can use --------------------------------------------------------------------

SAMPLE_CONTEXT: dict[str, Any] = {
    "id": 0, "name": "Анна Смирнова", "first_name": "Анна", "last_name": "Смирнова",
    "email": "anna@example.com", "phone": "+79161234567", "locale": "ru", "time_zone": "Europe/Moscow",
    "lifecycle_stage": "customer", "tags": ["vip"], "attributes": {"city": "Москва"},
    "orders": {"count": 3, "total": Decimal("12500.00"), "currency": "RUB", "totals": {"RUB": Decimal("12500.00")},
               "last_order_at": None},
}

# What a campaign adds to every message it renders (runs.send_steps); a template may use it.
SAMPLE_EXTRA: dict[str, Any] = {"campaign": {"id": 0, "name": "Sample campaign"}}

def contact_context(session: Session, contact: Any) -> dict[str, Any]:
    """What `{{ contact.… }}` holds: names, primary email and phone, locale, tags, attributes, orders."""
    return contact_contexts(session, [contact])[contact.id]


def contact_contexts(session: Session, contacts: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """`contact_context` for a batch of contacts in three queries (a campaign renders thousands)."""
    ids = [c.id for c in contacts]
    addresses = _first_addresses(session, ids)
    orders = _order_stats(session, ids)
    out: dict[int, dict[str, Any]] = {}
    for contact in contacts:
        email, phone = addresses.get(contact.id, (None, None))
        attributes = dict(contact.attributes or {})
        words = (contact.display_name or "").split()
        first = attributes.get("first_name") if isinstance(attributes.get("first_name"), str) else None
        last = attributes.get("last_name") if isinstance(attributes.get("last_name"), str) else None
        out[contact.id] = {
            "id": contact.id,
            "name": contact.display_name or "",
            "first_name": first or (words[0] if words else ""),
            "last_name": last or (" ".join(words[1:]) if len(words) > 1 else ""),
            "email": email,
            "phone": phone,
            "locale": contact.locale,
            "time_zone": contact.time_zone,
            "lifecycle_stage": contact.lifecycle_stage,
            "tags": list(contact.tags or []),
            "attributes": attributes,
            "orders": orders.get(contact.id) or {"count": 0, "total": None, "currency": None, "totals": {},
                                                 "last_order_at": None},
        }
    return out


def _first_addresses(session: Session, contact_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
    """Each contact's (email, phone): the primary identity of the kind, else the oldest, as
    hub.contacts.identities_of orders them; read as rows, not ORM identities (loading those was most
    of contact_contexts in a campaign's profile)."""
    from sqlalchemy import select

    from hub.db import among
    from hub.models import Identity

    found: dict[int, tuple[str | None, str | None]] = {}
    if not contact_ids:
        return found
    rows = session.execute(
        select(Identity.contact_id, Identity.kind, Identity.value)
        .where(among(session, Identity.contact_id, contact_ids), Identity.kind.in_(["email", "phone"]))
        .order_by(Identity.contact_id, Identity.is_primary.desc(), Identity.id))
    for contact_id, kind, value in rows:
        email, phone = found.get(contact_id, (None, None))
        if kind == "email" and email is None:
            email = value
        elif kind == "phone" and phone is None:
            phone = value
        found[contact_id] = (email, phone)
    return found


def _order_stats(session: Session, contact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Order figures per contact, by the rules of hub.events.order_totals (the latest report of an
    order counts once, refunds subtract), read for the whole batch at once."""
    from sqlalchemy import select

    from hub.db import among
    from hub.events import COMMERCE_CHANNEL, ORDER_COMPLETED, ORDER_REFUNDED
    from hub.models import TimelineEvent

    if not contact_ids:
        return {}
    rows = session.execute(
        select(TimelineEvent.contact_id, TimelineEvent.kind, TimelineEvent.occurred_at, TimelineEvent.data)
        .where(among(session, TimelineEvent.contact_id, contact_ids), TimelineEvent.channel == COMMERCE_CHANNEL,
               TimelineEvent.kind.in_([ORDER_COMPLETED, ORDER_REFUNDED]))
        .order_by(TimelineEvent.contact_id, TimelineEvent.occurred_at, TimelineEvent.id)
    ).all()
    per: dict[int, dict[str, Any]] = {}
    for contact_id, kind, occurred_at, data in rows:
        state = per.setdefault(contact_id, {"completed": {}, "refunds": [], "last": None})
        order = (data or {}).get("order") or {}
        try:
            currency, amount = str(order["currency"]), Decimal(str(order["amount"]))
        except (KeyError, ArithmeticError):
            continue
        if kind == ORDER_COMPLETED:
            state["completed"][(str(data.get("source")), str(order.get("order_id")))] = (currency, amount)
            state["last"] = occurred_at
        else:
            state["refunds"].append((currency, -amount))
    out = {}
    for contact_id, state in per.items():
        totals: dict[str, Decimal] = {}
        for currency, amount in [*state["completed"].values(), *state["refunds"]]:
            totals[currency] = totals.get(currency, Decimal(0)) + amount
        currency, total = max(totals.items(), key=lambda kv: kv[1]) if totals else (None, None)
        out[contact_id] = {"count": len(state["completed"]), "total": total, "currency": currency, "totals": totals,
                           "last_order_at": state["last"]}
    return out


VARIABLES = (
    ("contact.name", "Анна Смирнова"), ("contact.first_name", "Анна"), ("contact.last_name", "Смирнова"),
    ("contact.email", "anna@example.com"), ("contact.phone", "+79161234567"), ("contact.locale", "ru"),
    ("contact.tags", "['vip']"), ("contact.attributes.city", "Москва"), ("contact.orders.count", "3"),
    ("contact.orders.total", "12500.00"), ("contact.orders.currency", "RUB"),
    ("contact.orders.last_order_at", "2026-01-10 12:00:00+00:00"),
)

