"""Agents' notes: internal events on a contact's timeline. The first real adapter, and the smallest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.channel import Capability, Channel, ChannelLimits
from hub.ingest import InboundEvent
from hub.models import Direction
from hub.plugin import EventKind, TimelineChannel
from hub.translatable import N_


class NotePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int
    text: str = Field(min_length=1, max_length=20_000)
    author_id: int | None = None
    # The client's id for the note, so a retried submit does not post it twice.
    client_id: str | None = Field(default=None, max_length=100)


class NoteChannel(Channel):
    name = "note"
    label = "Note"
    timeline_channels = (TimelineChannel("note", N_("Note"), "note"),)
    event_kinds = (EventKind("note", N_("Note")),)
    capabilities = frozenset({Capability.RECEIVE})
    limits = ChannelLimits(max_body_chars=20_000)

    @staticmethod
    def parse(payload: Any) -> Sequence[InboundEvent]:
        note = NotePayload.model_validate(payload)
        return [
            InboundEvent(
                channel="note",
                kind="note",
                direction=Direction.INTERNAL,
                contact_id=note.contact_id,
                text=note.text,
                actor_user_id=note.author_id,
                external_id=f"note:{note.client_id}" if note.client_id else None,
            )
        ]
