"""Rendering message templates: variants by locale, escaping, clear errors, and a sandbox that holds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns.message_templates.rendering import (
    SAMPLE_CONTEXT,
    TemplateRenderError,
    contact_context,
    render_message,
    validate_variants,
)

CTX = {**SAMPLE_CONTEXT, "attributes": {"city": "<b>Москва</b>", "secret": "s"}}
EMAIL = {
    "ru": {"subject": "Привет, {{ contact.first_name }}!", "html": "<p>Город: {{ contact.attributes.city }}</p>",
           "text": "Город: {{ contact.attributes.city }}"},
    "en": {"subject": "Hello, {{ contact.first_name }}!\nBcc: x@example.com", "html": "<p>{{ contact.name }}</p>"},
}


def sms(source: str) -> dict:
    return render_message({"en": {"text": source}}, contact_context=CTX, locale="en", channel="sms")


def test_variant_is_chosen_by_locale_then_default():
    ru = render_message(EMAIL, contact_context=CTX, locale="ru", channel="email", default_locale="en")
    assert ru["subject"] == "Привет, Анна!"
    assert ru["html"] == "<p>Город: &lt;b&gt;Москва&lt;/b&gt;</p>"  # HTML escapes contact data
    assert ru["text"] == "Город: <b>Москва</b>"  # plain text does not
    fallback = render_message(EMAIL, contact_context=CTX, locale="de", channel="email", default_locale="en")
    assert fallback["html"] == "<p>Анна Смирнова</p>"
    assert fallback["subject"] == "Hello, Анна! Bcc: x@example.com"  # one line: no header injection
    assert fallback["text"] == "Анна Смирнова"  # derived from the HTML when there is no text part
    assert render_message(EMAIL, contact_context=CTX, locale=None, channel="email")["subject"] == "Привет, Анна!"


def test_sms_gives_text_only_and_extra_values_are_available():
    out = render_message({"ru": {"text": "{{ contact.first_name }}, код {{ code }}"}}, contact_context=CTX,
                         locale="ru", extra={"code": "1234"}, channel="sms")
    assert out == {"text": "Анна, код 1234"}


def test_loops_filters_and_numbers_work():
    out = sms("{% for t in contact.tags %}{{ t|upper }}{% if not loop.last %}, {% endif %}{% endfor %} "
              "{{ contact.orders.total|round|int }} {{ contact.orders.count * 2 }} {{ contact.name|truncate(4, True, '') }}")
    assert out["text"] == "VIP 12500 6 Анна"


@pytest.mark.parametrize("source, where", [
    ("Hello\n{{ contact.nme }}", "en.text, line 2"),
    ("{% for x in contact.tags %}", "en.text, line 1"),
    ("ok\nok\n{{ 1 / 0 }}", "en.text, line 3"),
])
def test_errors_name_part_and_line(source, where):
    with pytest.raises(TemplateRenderError) as caught:
        sms(source)
    assert str(caught.value).startswith(where), str(caught.value)


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ '{0.__class__}'.format(contact) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(contact) }}",
    "{{ '{:999999999}'.format(1) }}",
    "{{ '%999999999s' % 'x' }}",
    "{{ contact.__class__ }}",
    "{{ contact.attributes|attr('__class__') }}",
    "{{ range.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% for x in contact.tags %}{{ loop.__class__.__init__.__globals__ }}{% endfor %}",
    "{{ contact.orders.total.scaleb(999999999)|int }}",
    "{{ contact.items.__self__ }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ 'x'.center(999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'|indent(999999999) }}",
    "{{ 'x' * 999999999 }}",
    "{{ [1] * 999999999 }}",
    "{{ 99 ** 99999999 }}",
    "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
    "{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}",
    "{% for a in range(9999) %}{% for b in range(9999) %}x{% endfor %}{% endfor %}",
    "{% set s %}{% for a in range(9999) %}{% for b in range(999) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}{% endset %}",
    "{% macro f(s) %}{{ f(s ~ s ~ s ~ s) }}{% endmacro %}{{ f('x') }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ 'ab'|replace('a', 'b' * 150000)|replace('b', 'cc') }}",
    "{{ [contact.name * 1000] * 9999|join }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_and_runaways_are_refused(source):
    with pytest.raises(TemplateRenderError) as caught:
        sms(source)
    message = str(caught.value)
    assert "en.text" in message
    for leak in ("<class", "os.popen", "module", "Context", "builtins", "/usr/"):
        assert leak not in message


def test_html_cannot_be_marked_safe_from_contact_data():
    with pytest.raises(TemplateRenderError, match="safe"):
        render_message({"en": {"subject": "s", "html": "{{ contact.attributes.city|safe }}"}}, contact_context=CTX,
                       locale="en", channel="email")


def test_huge_output_is_refused():
    with pytest.raises(TemplateRenderError, match="produced more than"):
        render_message({"en": {"subject": "s", "html": "{% for a in range(5000) %}" + "x" * 1000 + "{% endfor %}"}},
                       contact_context=CTX, locale="en", channel="email")


def test_validate_variants_checks_structure_and_syntax():
    cleaned = validate_variants("email", {"ru": {"subject": "Тема", "html": "<p>{{ contact.name }}</p>"}},
                                default_locale="ru")
    assert cleaned == {"ru": {"subject": "Тема", "html": "<p>{{ contact.name }}</p>", "text": ""}}
    assert validate_variants("sms", {"en": {"text": "Hi"}}) == {"en": {"text": "Hi"}}
    bad = [
        ("fax", {"en": {"text": "x"}}, "channel"),
        ("email", {}, "variants"),
        ("email", {"de": {"subject": "x", "text": "x"}}, "variants"),
        ("email", {"en": {"html": "x"}}, "en.subject"),
        ("email", {"en": {"subject": "x"}}, "en:"),
        ("sms", {"en": {"subject": "x", "text": "y"}}, "en:"),
        ("sms", {"en": {"text": "{% if %}"}}, "en.text, line 1"),
        ("email", {"en": {"subject": "x", "html": "a\nb\n{{ x }"}}, "en.html, line 3"),
        ("email", {"en": {"subject": "x", "text": "y" * 200_001}}, "en.text"),
    ]
    for channel, variants, where in bad:
        with pytest.raises(TemplateRenderError) as caught:
            validate_variants(channel, variants)
        assert str(caught.value).startswith(where), (variants, str(caught.value))
    with pytest.raises(TemplateRenderError, match="default"):
        validate_variants("sms", {"en": {"text": "x"}}, default_locale="ru")


def test_contact_context_reads_identities_and_orders(hub):
    from datetime import datetime, timezone

    from hub.models import Contact
    from tests.campaigns.segments.conftest import order, person

    with hub.session() as s, s.begin():
        anna = person(s, "Анна Смирнова", email="Anna@Example.com", phone="+7 916 123-45-67", locale="ru",
                      tags=["vip"], attributes={"city": "Москва"})
        order(s, anna, amount="1500.00", at=datetime(2026, 1, 10, tzinfo=timezone.utc))
        cid = anna.id
    with hub.session(read_only=True) as s:
        ctx = contact_context(s, s.get(Contact, cid))
    assert ctx["first_name"] == "Анна" and ctx["last_name"] == "Смирнова"
    assert ctx["email"] == "anna@example.com" and ctx["phone"] == "+79161234567"
    assert ctx["orders"]["count"] == 1 and ctx["orders"]["total"] == Decimal("1500.00")
    assert ctx["orders"]["currency"] == "RUB" and ctx["tags"] == ["vip"]
    out = render_message({"ru": {"text": "{{ contact.first_name }}: {{ contact.orders.total }} {{ contact.orders.currency }}"}},
                         contact_context=ctx, locale=ctx["locale"], channel="sms")
    assert out["text"] == "Анна: 1500.00 RUB"


def test_batch_contexts_agree_with_order_totals(hub):
    from datetime import datetime, timezone

    from campaigns.message_templates.rendering import contact_contexts
    from hub.events import order_totals
    from hub.models import Contact
    from tests.campaigns.segments.conftest import order, person

    at = datetime(2026, 1, 10, tzinfo=timezone.utc)
    with hub.session() as s, s.begin():
        anna, bob, vera = person(s, "Анна"), person(s, "Bob"), person(s, "Вера")
        order(s, anna, amount="100.00", at=at, order_id="1")
        order(s, anna, amount="150.00", at=at.replace(day=11), order_id="1")  # the same order, re-reported
        order(s, anna, amount="40.00", at=at.replace(day=12), order_id="1", kind="order.refunded")
        order(s, bob, amount="9.99", at=at, currency="EUR")
        ids = [anna.id, bob.id, vera.id]
    with hub.session(read_only=True) as s:
        contacts = [s.get(Contact, i) for i in ids]
        batch = contact_contexts(s, contacts)
        for contact in contacts:
            single = order_totals(s, contact_id=contact.id)
            got = batch[contact.id]["orders"]
            assert (got["count"], got["totals"], got["last_order_at"]) == (single.count, single.totals,
                                                                           single.last_order_at)
    assert batch[ids[0]]["orders"]["total"] == Decimal("110.00") and batch[ids[2]]["orders"]["count"] == 0


def test_batch_contexts_take_the_primary_address_else_the_oldest(hub):
    from sqlalchemy import select

    from campaigns.message_templates.rendering import contact_contexts
    from hub.models import Contact, Identity
    from tests.campaigns.segments.conftest import person

    with hub.session() as s, s.begin():
        anna = person(s, "Анна", email="old@example.com", phone="+7 916 000-00-01")
        bob = person(s, "Bob", email="first@example.com")
        vera = person(s, "Вера")
        # Anna's newer email and phone are her primary ones; Bob's second email is not primary.
        s.add_all([Identity(contact_id=anna.id, kind="email", value="new@example.com", is_primary=True),
                   Identity(contact_id=anna.id, kind="phone", value="+79160000002", is_primary=True),
                   Identity(contact_id=bob.id, kind="email", value="second@example.com"),
                   Identity(contact_id=vera.id, kind="external", value="crm:1")])
        for ident in s.scalars(select(Identity).where(Identity.contact_id == anna.id)):
            ident.is_primary = ident.value in ("new@example.com", "+79160000002")
        ids = [anna.id, bob.id, vera.id]
    with hub.session(read_only=True) as s:
        batch = contact_contexts(s, [s.get(Contact, i) for i in ids])
    assert (batch[ids[0]]["email"], batch[ids[0]]["phone"]) == ("new@example.com", "+79160000002")
    assert (batch[ids[1]]["email"], batch[ids[1]]["phone"]) == ("first@example.com", None)
    assert (batch[ids[2]]["email"], batch[ids[2]]["phone"]) == (None, None)

