"""The REST API and the CLI of data-subject requests: admin only, confirmed, idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.auth import SCOPES
from hub.models import AuditEntry, Identity
from tests.cli import cli_invoker


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


def make_contact(client, headers, email="olga@example.org", phone="+79030001122") -> int:  # type: ignore[no-untyped-def]
    answer = client.post("/api/v1/contacts", headers=headers,
                         json={"display_name": "Olga Petrova", "identities": [{"kind": "email", "value": email},
                                                                               {"kind": "phone", "value": phone}]})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_export_and_erase_through_the_api(hub, client, api_key):
    admin = api_key("admin")
    cid = make_contact(client, admin)
    client.post(f"/api/v1/contacts/{cid}/notes", headers=admin, json={"text": "Olga asked about her order 77"})
    exported = client.get(f"/api/v1/privacy/contacts/{cid}/export", headers=admin)
    assert exported.status_code == 200
    body = exported.json()
    assert body["contact_id"] == cid and "olga@example.org" in json.dumps(body)
    assert {"identity", "audit_entry"} <= set(body["tables"])

    # A mismatched confirmation erases nobody.
    before = counts(hub)
    wrong = client.post(f"/api/v1/privacy/contacts/{cid}/erase", headers=admin, json={"confirm": cid + 1})
    assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["errors"][0]["field"] == "confirm"
    assert counts(hub) == before

    first = client.post(f"/api/v1/privacy/contacts/{cid}/erase", headers=admin, json={"confirm": cid})
    assert first.status_code == 200, first.text
    assert first.json()["identities_suppressed"] == 2 and not first.json()["already_erased"]
    after = client.get(f"/api/v1/privacy/contacts/{cid}/export", headers=admin).json()
    text = json.dumps(after, ensure_ascii=False)
    assert after["erased"] and "olga" not in text.lower() and "order 77" not in text and "79030001122" not in text
    second = client.post(f"/api/v1/privacy/contacts/{cid}/erase", headers=admin, json={"confirm": cid})
    assert second.status_code == 200 and second.json()["already_erased"] and not second.json()["changed"]
    with hub.session(read_only=True) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erased")).all()
    assert len(entries) == 1 and entries[0].actor_kind == "api_key"
    assert "olga" not in json.dumps(entries[0].changes).lower()


def test_only_the_admin_scope_reaches_privacy(hub, client, api_key):
    cid = make_contact(client, api_key("admin"))
    everything_else = api_key(*[s for s in SCOPES if s != "admin"])
    before = counts(hub)
    for method, url, body in (("GET", f"/api/v1/privacy/contacts/{cid}/export", None),
                              ("POST", f"/api/v1/privacy/contacts/{cid}/erase", {"confirm": cid})):
        answer = client.request(method, url, headers=everything_else, json=body)
        assert answer.status_code == 403 and answer.json()["scope"] == "admin"
        assert client.request(method, url, json=body).status_code == 401
    assert counts(hub) == before


def test_unknown_contact_is_404(hub, client, api_key):
    admin = api_key("admin")
    assert client.get("/api/v1/privacy/contacts/424242/export", headers=admin).status_code == 404
    answer = client.post("/api/v1/privacy/contacts/424242/erase", headers=admin, json={"confirm": 424242})
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def run(hub, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    env = {"HUB_DATABASE_URL": hub.settings.database_url, "HUB_SECRET_KEY": "test-secret-key-" + "x" * 32,
           "HUB_DATA_DIR": str(tmp_path), "HUB_LIVE_BACKEND": "memory", "HUB_EMBEDDED_WORKER": "false"}
    with cli_invoker(env) as invoke:
        yield invoke


def test_cli_exports_by_address_and_erases_only_with_yes(hub, client, api_key, run, tmp_path):
    cid = make_contact(client, api_key("admin"))
    out = tmp_path / "olga.json"
    result = run("privacy", "export", "OLGA@example.org", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["contact_id"] == cid
    refused = run("privacy", "erase", str(cid))
    assert refused.exit_code == 2 and "--yes" in refused.output
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Identity)) == 2
    done = run("privacy", "erase", str(cid), "--yes")
    assert done.exit_code == 0, done.output
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Identity)) == 0
    again = run("privacy", "erase", str(cid), "--yes")
    assert again.exit_code == 0 and "already erased" in again.output
    missing = run("privacy", "export", "nobody@example.org", "--out", str(out))
    assert missing.exit_code == 1 and "no contact" in missing.output
