"""One contract suite, run over every registered adapter (the installed ones and the fake)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from hub.channel import (
    Capability,
    Channel,
    ChannelLimits,
    ChannelSettings,
    ContentPart,
    MarketingContext,
    SignatureError,
)
from hub.channel_hooks import sends_to_contacts
from hub.ingest import InboundEvent
from tests.conftest import test_registry

REGISTRY = test_registry()
ADAPTERS = [REGISTRY._classes[name] for name in REGISTRY.names]


def fixtures_of(cls: type[Channel]) -> list[Path]:
    folder = Path(inspect.getfile(cls)).parent / "fixtures"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_note_and_fake_are_registered():
    assert {"note", "fake"} <= set(REGISTRY.names)


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.name)
def adapter(request: pytest.FixtureRequest) -> type[Channel]:
    return request.param


def test_declares_itself_as_data(adapter):
    assert adapter.name == adapter.name.lower() and adapter.name.replace("_", "").isalnum()
    assert adapter.label
    assert isinstance(adapter.capabilities, frozenset) and adapter.capabilities <= set(Capability)
    assert isinstance(adapter.limits, ChannelLimits)
    assert issubclass(adapter.Settings, ChannelSettings)
    assert adapter.Settings.model_config.get("extra") == "forbid", "unknown settings keys must be errors"


def test_capabilities_match_behaviour(adapter):
    if Capability.SEND in adapter.capabilities:
        assert adapter.send is not Channel.send or adapter.send_many is not Channel.send_many
    if Capability.RECEIVE in adapter.capabilities:
        assert adapter.parse is not Channel.parse


def test_parse_is_pure_and_rejects_garbage(adapter):
    if Capability.RECEIVE not in adapter.capabilities:
        pytest.skip("does not receive")
    for garbage in (None, 42, "text", [], {"unexpected": True}):
        with pytest.raises(ValueError):
            adapter.parse(garbage)


def test_recorded_payloads_parse_to_events(adapter):
    paths = fixtures_of(adapter)
    if Capability.RECEIVE in adapter.capabilities:
        assert paths, f"{adapter.name} receives but keeps no recorded payloads in fixtures/"
    for path in paths:
        payload = json.loads(path.read_text())
        events = adapter.parse(payload)
        assert events and all(isinstance(e, InboundEvent) for e in events)
        assert all(e.channel == adapter.name for e in events)
        assert adapter.parse(payload) == events  # same input, same output: no clock, no I/O


@pytest.mark.any_store
def test_instance_contract(adapter, hub):
    channel = hub.channels[adapter.name]
    assert isinstance(channel.configured, bool)
    router = channel.router()
    if router is not None:
        # Webhook routes must refuse unsigned requests.
        with pytest.raises(SignatureError):
            channel.verify(url="http://hub.test/channels/x", headers={}, body=b"{}", form={})
    for job in channel.jobs():
        assert job.id.startswith(adapter.name + "."), "job ids are dotted and start with the channel name"
        assert (job.seconds is None) != (job.cron is None)


def test_declares_what_its_messages_carry(adapter):
    parts = adapter.parts
    assert parts and all(isinstance(p, ContentPart) for p in parts)
    assert len({p.name for p in parts}) == len(parts), "part names are content keys: each once"
    assert any(not p.one_line for p in parts), "a message needs a body part"
    assert all(p.max_chars is None or p.max_chars > 0 for p in parts)


@pytest.mark.any_store
def test_marketing_it_decorates_is_content_it_can_carry(adapter, hub):
    """A message made of the channel's own parts, decorated for marketing, still passes its own check
    (what campaigns and surveys rely on: they hand over neutral values and queue what comes back)."""
    if not sends_to_contacts(adapter):
        pytest.skip("does not send to contacts")
    channel = hub.channels[adapter.name]
    content = {p.name: ("<p>Spring sale</p>" if p.html else "Spring sale") for p in adapter.parts}
    context = MarketingContext(locale="ru", unsubscribe_url="https://hub.example.com/u/token", delivery_key="k",
                               track_links=lambda html: (html, "Spring sale"))
    decorated = channel.decorate_marketing(dict(content), context)
    channel.validate_content(decorated)
    assert decorated != content or type(channel).decorate_marketing is Channel.decorate_marketing


@pytest.mark.any_store
def test_unknown_settings_section_stops_start_up(hub):
    from hub.registry import ChannelLoadError
    from hub.runtime import Hub

    settings = hub.settings.model_copy(update={"channels": {"telegramm": {"token": "x"}}})
    with pytest.raises(ChannelLoadError, match="telegramm"):
        Hub(settings, registry=test_registry(), db=hub.db)


@pytest.mark.any_store
def test_invalid_channel_settings_name_the_channel(hub):
    from hub.registry import ChannelLoadError
    from hub.runtime import Hub

    settings = hub.settings.model_copy(update={"channels": {"fake": {"secret": 12, "colour": "red"}}})
    with pytest.raises(ChannelLoadError, match="channel 'fake'.*colour"):
        Hub(settings, registry=test_registry(), db=hub.db)


class _Broken(BaseModel):
    pass


def test_adapter_that_fails_to_import_stops_start_up(monkeypatch):
    from importlib.metadata import EntryPoint

    from hub import plugin
    from hub import registry as registry_module

    broken = EntryPoint(name="broken", value="channels.does_not_exist:Nope", group="hub.channels")
    monkeypatch.setattr(plugin, "entry_points", lambda group: [broken])
    with pytest.raises(registry_module.ChannelLoadError, match="'broken'.*failed to load"):
        registry_module.ChannelRegistry().load_entry_points()
