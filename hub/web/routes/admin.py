"""Admin pages: users and their roles, API keys, the installed channels, and the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from hub.channel import Capability, Channel, SendError
from hub import audit
from hub.auth import SCOPES, create_api_key, create_user, revoke_api_key
from hub.models import ApiKey, AuditEntry, Delivery, Role, User
from hub.timeline import InvalidCursor
from hub.web import confirm
from hub.web.i18n import N_, TranslatableError
from hub.web.pages import Agent, PageError, get_hub, redirect, render, require

router = APIRouter(prefix="/admin")
Admin = Annotated[Agent, Depends(require("admin"))]
ROLE_LABELS = {"agent": N_("Agent"), "marketer": N_("Marketer"), "admin": N_("Admin")}


def _users_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
                values: dict | None = None) -> Response:
    with get_hub(request).session(read_only=True) as db:
        users = list(db.scalars(select(User).order_by(User.is_active.desc(), User.display_name, User.id)))
    return render(request, agent, "admin_users.html", status=status, users=users, roles=ROLE_LABELS, error=error,
                  values=values or {})


@router.get("/users")
def users(request: Request, agent: Admin) -> Response:
    return _users_page(request, agent)


@router.post("/users")
def add_user(request: Request, agent: Admin, email: Annotated[str, Form(max_length=320)] = "",
             display_name: Annotated[str, Form(max_length=200)] = "", role: Annotated[str, Form()] = "agent",
             password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    values = {"email": email, "display_name": display_name, "role": role}
    if role not in ROLE_LABELS:
        return _users_page(request, agent, status=422, error=N_("Choose a role."), values=values)
    with get_hub(request).session() as db:
        try:
            user = create_user(db, email=email, password=password, role=Role(role), display_name=display_name.strip())
        except TranslatableError as exc:  # a bad address, a short password, a taken email
            return _users_page(request, agent, status=422, error=exc, values=values)
        audit.record(db, actor=agent.principal, action="user.create", entity="user", entity_id=user.id,
                     changes={"email": [None, user.email], "role": [None, user.role]})
        db.commit()
    return redirect(request, "/admin/users")


@router.post("/users/{user_id}/active")
def set_active(request: Request, user_id: int, agent: Admin, active: Annotated[str, Form()] = "") -> Response:
    with get_hub(request).session() as db:
        user = db.get(User, user_id)
        if user is None:
            raise PageError(404, N_("There is no such user."))
        if user.id == agent.id:
            raise PageError(409, N_("You cannot deactivate yourself."))
        wanted = active == "1"
        if user.is_active != wanted:
            user.is_active = wanted
            audit.record(db, actor=agent.principal, action="user.active", entity="user", entity_id=user.id,
                         changes={"is_active": [not wanted, wanted]})
        db.commit()
    return redirect(request, "/admin/users")


def _keys_page(request: Request, agent: Agent, *, status: int = 200, error: str | None = None,
               created: str | None = None) -> Response:
    with get_hub(request).session(read_only=True) as db:
        keys = list(db.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))
    return render(request, agent, "admin_keys.html", status=status, keys=keys, scopes=SCOPES, error=error,
                  created=created)


@router.get("/api-keys")
def api_keys(request: Request, agent: Admin) -> Response:
    return _keys_page(request, agent)


@router.post("/api-keys")
def add_api_key(request: Request, agent: Admin, name: Annotated[str, Form(max_length=200)] = "",
                scopes: Annotated[list[str] | None, Form()] = None) -> Response:
    if not name.strip():
        return _keys_page(request, agent, status=422, error=N_("Give the key a name."))
    with get_hub(request).session() as db:
        try:
            key, plain = create_api_key(db, name=name.strip(), scopes=scopes or [], created_by=agent.id)
        except ValueError:
            return _keys_page(request, agent, status=422, error=N_("Choose at least one permission."))
        audit.record(db, actor=agent.principal, action="api_key.create", entity="api_key", entity_id=key.id,
                     changes={"name": [None, key.name], "scopes": [None, key.scopes]})
        db.commit()
    # The plain key is shown once, in this answer, and never stored.
    return _keys_page(request, agent, status=201, created=plain)


@router.post("/api-keys/{key_id}/revoke")
async def revoke(request: Request, key_id: int, agent: Admin) -> Response:
    if not confirm.confirmed(await request.form()):
        with get_hub(request).session(read_only=True) as db:
            key = db.get(ApiKey, key_id)
            if key is None:
                raise PageError(404, N_("There is no such API key."))
            name = key.name
        return confirm.ask(request, agent, action=f"/admin/api-keys/{key_id}/revoke", title=N_("Revoke API key"),
                           question=N_("Revoke the API key “%(name)s”?"),
                           detail=N_("Programs that use it are refused from the next request on. A revoked key "
                                     "cannot be restored; create a new one instead."),
                           button=N_("Revoke"), back="/admin/api-keys", params={"name": name})
    with get_hub(request).session() as db:
        key = db.get(ApiKey, key_id)
        if key is None:
            raise PageError(404, N_("There is no such API key."))
        if key.revoked_at is None:
            revoke_api_key(db, key)
            audit.record(db, actor=agent.principal, action="api_key.revoke", entity="api_key", entity_id=key.id)
        db.commit()
    return redirect(request, "/admin/api-keys")


CHANNEL_STATES = {"configured": N_("Configured"), "not_configured": N_("Not configured"), "error": N_("Error")}
_SENT = ("sent", "delivered", "read")
_BROKEN = ("failed", "dead")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def setup_lines(name: str, channel: Any) -> tuple[list[str], str]:
    """The settings to set for a channel, as HUB_* environment lines and as a TOML section."""
    example: dict[str, Any] = dict(channel.setup_example)
    for key in channel.missing_settings():
        example.setdefault(key, True if key == "enabled" else "…")
    env = [f"HUB_CHANNELS__{name.upper()}__{key.upper()}={value if not isinstance(value, bool) else str(value).lower()}"
           for key, value in example.items()]
    toml = "\n".join([f"[channels.{name}]", *(f"{key} = {_toml_value(value)}" for key, value in example.items())])
    return env, toml


def _last_failure(db: Any, name: str) -> str | None:
    """The reason of the channel's latest failed send, when nothing went out after it."""
    latest = db.execute(select(Delivery.status, Delivery.last_error).where(
        Delivery.channel == name, Delivery.status.in_(_SENT + _BROKEN))
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(1)).first()
    if latest is None or latest.status not in _BROKEN:
        return None
    return latest.last_error or latest.status


def _channels_page(request: Request, agent: Agent, *, status: int = 200,
                   tested: dict[str, Any] | None = None) -> Response:
    hub = get_hub(request)
    rows = []
    with hub.session(read_only=True) as db:
        for name, channel in sorted(hub.channels.items()):
            can_send = Capability.SEND in channel.capabilities and type(channel).test_message is not Channel.test_message
            failure = _last_failure(db, name) if channel.configured and can_send else None
            state = "error" if failure else ("configured" if channel.configured else "not_configured")
            env, toml = setup_lines(name, channel)
            rows.append({"name": name, "label": channel.label or name, "state": state,
                         "state_label": CHANNEL_STATES[state], "failure": failure,
                         "missing": channel.missing_settings(), "env": env, "toml": toml,
                         "can_test": can_send and channel.configured,
                         "capabilities": sorted(str(c) for c in channel.capabilities)})
    return render(request, agent, "admin_channels.html", status=status, rows=rows, tested=tested or {})


@router.get("/channels")
def channels(request: Request, agent: Admin) -> Response:
    return _channels_page(request, agent)


@router.post("/channels/{name}/test")
def send_test(request: Request, name: str, agent: Admin, address: Annotated[str, Form(max_length=320)] = "") -> Response:
    """Send a short test message now, past the outbox, and show what the provider answered."""
    hub = get_hub(request)
    channel = hub.channels.get(name)
    if channel is None:
        raise PageError(404, N_("There is no such channel."))
    tested: dict[str, Any] = {"name": name, "address": address}
    try:
        message = channel.test_message(address.strip()) if address.strip() else None
    except ValueError as exc:
        tested.update(ok=False, detail=str(exc), error=N_("That address is not one this channel can send to."))
        return _channels_page(request, agent, status=422, tested=tested)
    if message is None:
        tested.update(ok=False, error=N_("Type where to send the test."))
        return _channels_page(request, agent, status=422, tested=tested)
    if not channel.configured:
        tested.update(ok=False, error=N_("This channel is not configured yet; an admin can set it up."))
        return _channels_page(request, agent, status=409, tested=tested)
    try:
        result = asyncio.run(channel.send(message))
    except SendError as exc:
        tested.update(ok=False, error=N_("The test was not sent:"), detail=exc.reason)
        return _channels_page(request, agent, status=502, tested=tested)
    except Exception as exc:  # noqa: BLE001 - a provider's unexpected failure is what the admin needs to see
        tested.update(ok=False, error=N_("The test was not sent:"), detail=f"{type(exc).__name__}: {exc}")
        return _channels_page(request, agent, status=502, tested=tested)
    with hub.session() as db:
        audit.record(db, actor=agent.principal, action="channel.test", entity="channel", entity_id=name,
                     changes={"channel": name, "address": message.address})
        db.commit()
    tested.update(ok=True, detail=" · ".join(filter(None, [result.provider_id, result.detail])),
                  address=message.address)
    return _channels_page(request, agent, tested=tested)


AUDIT_PAGE = 50
SYSTEM_ACTOR = N_("System")


def _shown(value: object) -> str:
    """One value of an entry's changes as a person reads it (names in any script, lists as JSON)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _actor_names(db, entries: list[AuditEntry]) -> dict[tuple[str, str | None], str]:  # type: ignore[no-untyped-def]
    """How each entry's actor is shown: a user's name, an API key's name."""
    wanted = {(e.actor_kind, e.actor_id) for e in entries}
    user_ids = [int(i) for k, i in wanted if k == "user" and i and i.isdigit()]
    key_ids = [int(i) for k, i in wanted if k == "api_key" and i and i.isdigit()]
    names: dict[tuple[str, str | None], str] = {}
    if user_ids:
        for u in db.scalars(select(User).where(User.id.in_(user_ids))):
            names[("user", str(u.id))] = u.display_name or u.email
    if key_ids:
        for k in db.scalars(select(ApiKey).where(ApiKey.id.in_(key_ids))):
            names[("api_key", str(k.id))] = k.name
    return names


@router.get("/audit")
def audit_log(request: Request, agent: Admin, actor: str = "", action: str = "", since: str = "", until: str = "",
              cursor: str = "") -> Response:
    """Who changed what and when: newest first, filtered by actor, action and days (in the admin's zone)."""
    values = {"actor": actor[:120], "action": action[:100], "since": since[:10], "until": until[:10]}
    errors = []
    first, last = _day(values["since"]), _day(values["until"])
    if values["since"] and first is None or values["until"] and last is None:
        errors.append(N_("Enter dates as YYYY-MM-DD."))
    elif first and last and first > last:
        errors.append(N_("The first day must not be after the last one."))
    zone = agent.fmt.tz
    start = datetime.combine(first, time(0), tzinfo=zone) if first and not errors else None
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone) if last and not errors else None
    with get_hub(request).session(read_only=True) as db:
        try:
            page = audit.entries(db, actor=values["actor"] or None, action=values["action"] or None, since=start,
                                 until=end, limit=AUDIT_PAGE, cursor=cursor or None)
        except InvalidCursor:
            raise PageError(400, N_("That page of the audit log has expired; reload the page.")) from None
        names = _actor_names(db, list(page.items))
        users = list(db.scalars(select(User).order_by(User.display_name, User.email)))
        keys = list(db.scalars(select(ApiKey).order_by(ApiKey.name, ApiKey.id)))
        actions = audit.actions(db)
    query = {k: v for k, v in values.items() if v}
    older = f"/admin/audit?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None
    return render(request, agent, "admin_audit.html", status=422 if errors else 200, entries=page.items, names=names,
                  users=users, keys=keys, actions=actions, values=values, errors=errors, older=older,
                  newest=f"/admin/audit?{urlencode(query)}" if cursor else None, filtered=bool(query),
                  system_actor=SYSTEM_ACTOR, shown=_shown)
