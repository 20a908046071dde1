"""Forms, their submissions, and the per-address submission log the rate limit counts."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.models import BigId, UTCDateTime, _fk, _id, _json, _time


def new_key() -> str:
    """The public address of a form: 128 random bits, never a sequential id."""
    return secrets.token_urlsafe(16)


class Form(SQLModel, table=True):
    """A form an admin defined; `fields` holds the validated FieldDef list (definitions.py)."""

    __tablename__ = "form"

    id: int | None = _id()
    key: str = Field(default_factory=new_key, sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    name: str = Field(max_length=200)  # what the workspace calls it
    title: str = Field(default="", max_length=300)  # the heading visitors see
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    fields: list[dict[str, Any]] = _json(list)
    submit_label: str = Field(default="", max_length=100)
    # The language the admin wrote the form's texts in: its page speaks it, so labels, button and
    # errors are one language. None: the visitor's (a form whose texts suit any language).
    locale: str | None = Field(default=None, max_length=10)
    thank_you: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    redirect_url: str | None = Field(default=None, max_length=2000)
    # Origins (https://shop.example) whose pages may embed the form: CORS and redirects.
    allowed_origins: list[str] = _json(list)
    tags: list[str] = _json(list)  # added to every contact who submits
    task_assignee_id: int | None = _fk("user_account.id", index=False)
    task_title: str = Field(default="", max_length=500)
    is_active: bool = True
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class FormSubmission(SQLModel, table=True):
    """One accepted submission; (form, client_id) is unique so a replayed post is stored once."""

    __tablename__ = "form_submission"
    __table_args__ = (
        sa.UniqueConstraint("form_id", "client_id", name="uq_form_submission_client"),
        sa.Index("ix_form_submission_form_time", "form_id", "created_at", "id"),
    )

    id: int | None = _id()
    form_id: int = Field(sa_column=sa.Column(BigId, sa.ForeignKey("form.id", ondelete="CASCADE"), nullable=False))
    client_id: str = Field(max_length=64)
    contact_id: int | None = _fk("contact.id")
    event_id: int | None = _fk("timeline_event.id", index=False)
    task_id: int | None = _fk("task.id", index=False)
    values: dict[str, Any] = _json(dict)
    # What the visitor agreed to, word for word, per consent field.
    consents: list[dict[str, Any]] = _json(list)
    source_url: str | None = Field(default=None, max_length=2000)
    locale: str | None = Field(default=None, max_length=10)
    address: str = Field(default="", max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)
    created_at: datetime = _time()


class FormHit(SQLModel, table=True):
    """One submission attempt from an address, kept briefly: the per-address rate limit counts these
    rows, so the limit holds across every API process."""

    __tablename__ = "form_hit"
    __table_args__ = (sa.Index("ix_form_hit_address_time", "address", "occurred_at"),)

    id: int | None = _id()
    address: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


__all__ = ["Form", "FormHit", "FormSubmission", "new_key"]
