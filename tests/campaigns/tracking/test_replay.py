"""The template's parse replayed per contact gives what parsing each message gives, byte for byte."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from campaigns.message_templates.rendering import render_message
from campaigns.tracking import replay
from campaigns.tracking.links import instrument_html_and_text

TEMPLATE = """<!DOCTYPE html><html><head><title>{{ contact.name }}</title>
<style>a { color: red }</style><script>var x = "<a href='https://in.script/'>";</script></head>
<body><!-- <a href="https://in.comment/">hidden</a> -->
<p class="hi {{ contact.first_name }}">Привет, <b>{{ contact.first_name }}</b> &amp; {{ contact.last_name }}&nbsp;!</p>
<a href="https://shop.example.com/p?id={{ contact.id }}&amp;n={{ contact.name|urlencode }}" data-x='{{ contact.email }}'>Shop {{ contact.name }}</a>
<a href="https://shop.example.com/{{ contact.attributes.slug }}">https://shop.example.com/{{ contact.attributes.slug }}</a>
<div><ul><li><a href="mailto:{{ contact.email }}">write</a></li><li><a href="{{ contact.attributes.url }}" />x</li></ul></div>
<blockquote>quoted {{ contact.attributes.note }}<br/>line</blockquote>
<a href="https://x.example.com/same">one</a><a data-no-track href="https://x.example.com/no">no</a>
{% if contact.id % 2 %}<a href="https://odd.example.com/">odd</a>{% endif %}
</body></html>{{ contact.attributes.tail }}"""

CONTACTS = [
    {"id": i, "name": name, "first_name": name.split()[0], "last_name": name.split()[-1],
     "email": f"u{i}@example.com", "attributes": {"slug": slug, "url": url, "note": note, "tail": tail}}
    for i, (name, slug, url, note, tail) in enumerate([
        ("Анна Смирнова", "a-b", "https://x.example.com/é", "a & b", ""),
        ("O'Brien \"Bob\"", "x y", "javascript:alert(1)", "<script>", "&amp"),
        ("  spaced   out  ", "%20", "", "\u00a0\n", "trailing & text"),
        ("Zoë <b>bold</b>", "ä/ö?q=1&r=2", "https://own/t/", "&#39;", "&lt"),
        ("Plain", "p", "http://example.com/long" + "x" * 50, "", "<a href=x>"),
    ])
]


def _both(settings, contact):
    chunks: list[str] = []
    content = render_message({"en": {"subject": "s", "html": TEMPLATE}}, contact_context=contact, locale="en",
                             channel="email", text_from_html=False, html_chunks=chunks)
    html = content["html"]
    assert "".join(chunks) == html
    shape = replay.skeleton(chunks)
    assert shape is not None and replay.plan(shape[0]) is not None  # replayed, not parsed again
    return (instrument_html_and_text(settings, html, delivery_key=f"k{contact['id']}", chunks=chunks),
            instrument_html_and_text(settings, html, delivery_key=f"k{contact['id']}"))


@pytest.mark.parametrize("contact", CONTACTS, ids=lambda c: str(c["id"]))
def test_replayed_parse_is_the_full_parse(hub, contact):
    replayed, parsed = _both(hub.settings, contact)
    assert replayed == parsed
    assert "/t/c/" in replayed[0] and "/t/o/" in replayed[0]


def test_the_template_is_parsed_once_for_many_contacts(hub):
    replay.plan.cache_clear()
    for contact in [*CONTACTS, *CONTACTS]:
        _both(hub.settings, {**contact, "attributes": {**contact["attributes"], "tail": ""}})
    info = replay.plan.cache_info()
    assert info.hits > 0 and info.currsize <= 2  # one shape per branch of the {% if %}
    chunks = ["<p>", replay.Markup("Ann"), "</p><a href=\"https://e.com/?n=", replay.Markup("Ann&amp;Bo"), "\">x</a>"]
    shape = replay.skeleton(chunks)
    assert shape is not None and replay.plan(shape[0]) is not None


@pytest.mark.parametrize("chunks", [
    ["<p>", replay.Markup("<b>raw</b>"), "</p>"],                  # a |safe value with markup
    ["<a href=", replay.Markup("https://e.com/ x"), ">x</a>"],     # unquoted attribute value
    ["<", replay.Markup("b"), ">x"],                               # a value that would open a tag
    ["<p><!-- ", replay.Markup("x"), " --></p>"],                   # inside a comment
    ["<script>", replay.Markup("x"), "</script>"],                 # inside script
    ["<", replay.Markup("a"), " href='https://e.com/'>x</a>"],     # the tag name
    ["<a href='https://e.com/'", replay.Markup(" x"), ">x</a>"],   # between attributes
    ["<p>x</", replay.Markup("p"), "></p>"],                       # an end tag
    ["<br/", replay.Markup("x"), ">"],                             # a self-closing tag's name
])
def test_what_could_change_the_parse_is_parsed_in_full(hub, chunks):
    html = "".join(chunks)
    shape = replay.skeleton(chunks)
    assert shape is None or replay.plan(shape[0]) is None
    assert instrument_html_and_text(hub.settings, html, delivery_key="k", chunks=chunks) == \
        instrument_html_and_text(hub.settings, html, delivery_key="k")


FRAGMENTS = ["<p>", "</p>", "<a href=\"https://e.com/?q=", "<a href='https://e.com/", "\">", "'>", "</a>", "<br/>",
             "<a href=https://e.com/x>", "<!-- ", " -->", "<script>", "</script>", "&amp;", "&", "&#39", "<", ">",
             " ", "\n", "text", "<body>", "</body>", "<blockquote>", "</blockquote>", "<li>", "\"", "'", "=",
             "<a data-no-track href=\"https://e.com/n\">", "<!DOCTYPE html>", "</", "<?x?>", "<a href=\""]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12).map(escape)), max_size=30))
def test_any_mix_of_template_text_and_values_replays_as_it_parses(hub, chunks):
    html = "".join(chunks)
    assert instrument_html_and_text(hub.settings, html, delivery_key="k", chunks=chunks) == \
        instrument_html_and_text(hub.settings, html, delivery_key="k")


def test_an_empty_value_is_no_text(hub):
    # html.parser reports no empty text; an empty one would still start a quoted line with "> ".
    chunks = ["<blockquote><a href=\"https://e.com/\">", replay.Markup(""), "</a>", replay.Markup(""), "</blockquote>"]
    html = "".join(chunks)
    assert instrument_html_and_text(hub.settings, html, delivery_key="k", chunks=chunks) == \
        instrument_html_and_text(hub.settings, html, delivery_key="k")


# --- the text part filled in per message (campaigns.tracking.links._filled) ---------------------

WORDS = st.text(alphabet=st.sampled_from("aZ9яЖ.,-:/@é"), min_size=1, max_size=6)
VALUES = st.one_of(
    st.lists(WORDS, min_size=1, max_size=3).map(" ".join),  # what the text part is filled in with
    st.sampled_from(["", " a", "a ", "a  b", "a\nb", "a&b", "a\xa0b", "\u2028", "https://e.com/x", "amp;", "#39;"]),
    st.text(max_size=8),
).map(escape)
TEXT_FRAGMENTS = [*FRAGMENTS, "<a href=\"https://e.com/\">", "<a href=\"mailto:", "<a href='mailto:x@e.com'>",
                  "<a href=\"https://e.com/x\">https://e.com/x</a>", "<head>", "</head>", "<title>", "</title>",
                  "<a href=\"#top\">", "<a href=\"https://hub.example.com/u/x\">", "<h1>", "</h1>", "<div>",
                  "</div>", "<ul>", "</ul>", "</li>", "&amp", "&#", "\t", "  ", "\xa0", "<br>"]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.sampled_from(TEXT_FRAGMENTS), VALUES), max_size=30))
def test_a_text_part_filled_in_is_the_text_part_parsed(hub, chunks):
    html = "".join(chunks)
    assert instrument_html_and_text(hub.settings, html, delivery_key="k", chunks=chunks) == \
        instrument_html_and_text(hub.settings, html, delivery_key="k")


def test_a_campaigns_text_part_is_read_once_per_shape_and_filled_in_for_each_message(hub, monkeypatch):
    template = ("<h1>{{ contact.first_name }}, offers</h1><p>Dear {{ contact.name }} from {{ contact.attributes.city }}"
                "</p><p><a href=\"https://shop.example.com/sale?c={{ contact.id }}\">See {{ contact.first_name }}'s sale"
                "</a> · <a href=\"https://shop.example.com/new\">https://shop.example.com/new</a> · <a href=\""
                "mailto:help@shop.example.com\">help@shop.example.com</a></p><blockquote>quoted<br>{{ contact.name }}"
                "</blockquote>")
    replay.plan.cache_clear()
    replayed: list[object] = []
    real = replay.replay
    monkeypatch.setattr(replay, "replay", lambda *a: replayed.append(a[2]) or real(*a))
    for i, name in enumerate(["Анна Смирнова", "Bob", "Jean-Luc Picard", "Zoë", "李 小龙"]):
        contact = {"id": i, "name": name, "first_name": name.split()[0], "attributes": {"city": "Москва"}}
        chunks: list[str] = []
        html = render_message({"en": {"subject": "s", "html": template}}, contact_context=contact, locale="en",
                              channel="email", text_from_html=False, html_chunks=chunks)["html"]
        filled = instrument_html_and_text(hub.settings, html, delivery_key=f"k{i}", chunks=chunks)
        assert filled == instrument_html_and_text(hub.settings, html, delivery_key=f"k{i}")
        assert f"Dear {name} from Москва" in filled[1] and f"> {name}" in filled[1] and "(mailto:" not in filled[1]
    assert len(replayed) == 1  # the shape's text part, read once; no message's own events replayed
    # A value the text part could not take as it is: that message's events are replayed.
    contact = {"id": 9, "name": "a  b", "first_name": "a", "attributes": {"city": "Москва"}}
    chunks = []
    html = render_message({"en": {"subject": "s", "html": template}}, contact_context=contact, locale="en",
                          channel="email", text_from_html=False, html_chunks=chunks)["html"]
    assert instrument_html_and_text(hub.settings, html, delivery_key="k9", chunks=chunks) == \
        instrument_html_and_text(hub.settings, html, delivery_key="k9")
    assert len(replayed) == 2
