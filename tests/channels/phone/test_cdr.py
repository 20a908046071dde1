"""Importing Asterisk's Master.csv: good rows become calls (once), bad rows are reported."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from channels.phone.cdr import import_cdr, write_rejects
from hub.models import Contact, TimelineEvent
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.channels.phone.conftest import Agents, agent_lines
from tests.conftest import test_registry

# As cdr_csv writes it: quoted fields, clid with embedded quotes, local times, uniqueid last but one.
MASTER_CSV = '''\
"","+79161234567","101","from-trunk","""Ирина"" <+79161234567>","SIP/trunk-00000001","SIP/101-00000002","Dial","SIP/101,20","2026-01-12 10:15:02","2026-01-12 10:15:09","2026-01-12 10:19:41",279,272,"ANSWERED","DOCUMENTATION","1736665502.1",""
"","102","89031234567","from-internal","""Boris"" <102>","SIP/102-00000003","SIP/trunk-00000004","Dial","SIP/trunk/89031234567","2026-01-12 11:00:00","","2026-01-12 11:00:31",31,0,"NO ANSWER","DOCUMENTATION","1736668800.3",""
"","+79261112233","s","from-pstn","""Unknown"" <+79261112233>","SIP/trunk-00000005","","VoiceMail","101@default","2026-01-12 19:30:00","2026-01-12 19:30:05","2026-01-12 19:31:05",65,60,"ANSWERED","DOCUMENTATION","1736699400.5",""
"","101","+74951234567","from-internal","""Anna"" <101>","SIP/101-00000006","SIP/trunk-00000007","Dial","SIP/trunk/+74951234567","2026-01-13 09:05:00","","2026-01-13 09:05:12",12,0,"BUSY","DOCUMENTATION","1736748300.6",""
"","101","102","from-internal","""Anna"" <101>","SIP/101-00000008","SIP/102-00000009","Dial","SIP/102","2026-01-13 09:10:00","2026-01-13 09:10:03","2026-01-13 09:12:00",120,117,"ANSWERED","DOCUMENTATION","1736748600.8",""
"","+79161234567","101","from-trunk","","SIP/trunk-0000000a","SIP/101-0000000b","Dial","SIP/101,20","12/01/2026 10:15","","2026-01-12 10:16:00",10,0,"NO ANSWER","DOCUMENTATION","1736665600.10",""
"","+7916","101","from-trunk","","SIP/trunk-0000000c","SIP/101-0000000d","Dial","SIP/101,20","2026-01-13 12:00:00","","2026-01-13 12:00:10",10,0,"NO ANSWER","DOCUMENTATION","1736758800.12",""
"","+79161234567","101"
"","+79161234567","101","from-trunk","","SIP/trunk-0000000e","SIP/101-0000000f","Dial","SIP/101,20","2026-01-13 13:00:00","","2026-01-13 13:00:10",ten,0,"NO ANSWER","DOCUMENTATION","1736762400.14",""
"","+79161234567","101","from-trunk","","SIP/trunk-00000010","SIP/101-00000011","Dial","SIP/101,20","2026-01-13 14:00:00","","2026-01-13 14:00:10",10,0,"HUNG UP","DOCUMENTATION","1736766000.16",""

"","+79031234567","+74957654321","default","","SIP/trunk-00000012","SIP/trunk-00000013","Dial","SIP/trunk","2026-01-13 15:00:00","","2026-01-13 15:00:10",10,0,"FAILED","DOCUMENTATION","1736769600.18",""
'''


@pytest.fixture
def phone_hub(hub: Hub, agents: Agents) -> Hub:
    settings = hub.settings.model_copy(update={"channels": {"phone": {"agents": agent_lines(agents)}}})
    return Hub(settings, registry=test_registry(), triggers=TriggerRegistry(), db=hub.db)


def calls(hub: Hub) -> list[TimelineEvent]:
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "call").order_by(TimelineEvent.occurred_at)))


def count(hub: Hub, model: Any) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def test_a_cdr_file_with_bad_rows(phone_hub: Hub, agents: Agents, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(MASTER_CSV, encoding="utf-8")
    seen: list[tuple[int, int]] = []
    report = import_cdr(phone_hub, path, time_zone="Europe/Moscow", progress=lambda done, total: seen.append((done, total)))

    assert (report.rows, report.imported, report.already) == (11, 4, 0)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [5, 6, 7, 8, 9, 10, 12]
    assert "internal call between extensions 101 and 102" in reasons[5]
    assert "start '12/01/2026 10:15' is not a time" in reasons[6]
    assert "+7916" in reasons[7]
    assert "3 columns" in reasons[8]
    assert "duration 'ten'" in reasons[9]
    assert "disposition 'HUNG UP'" in reasons[10]
    assert "neither" in reasons[12]
    assert seen[-1] == (11, 11) and [d for d, _ in seen] == list(range(1, 12))

    inbound, outbound, voicemail, busy = calls(phone_hub)
    assert (inbound.direction, inbound.status, inbound.data["outcome"]) == ("in", "answered", "answered")
    assert inbound.occurred_at.isoformat() == "2026-01-12T07:15:02+00:00"  # 10:15 in Moscow
    assert inbound.data["talk_seconds"] == 272 and inbound.actor_user_id == agents.anna.id
    assert inbound.external_id == "cdr:asterisk:1736665502.1"
    assert (outbound.direction, outbound.data["outcome"], outbound.data["to"]) == ("out", "missed", "+79031234567")
    assert outbound.actor_user_id == agents.boris.id
    assert voicemail.data["outcome"] == "voicemail"
    assert busy.data["outcome"] == "busy" and busy.data["to"] == "+74951234567"
    with phone_hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 4  # new numbers became contacts

    again = import_cdr(phone_hub, path, time_zone="Europe/Moscow")
    assert (again.imported, again.already, len(again.rejected)) == (0, 4, 7)
    assert len(calls(phone_hub)) == 4

    rejects = tmp_path / "rejects.csv"
    write_rejects(report, rejects)
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line,reason,row" and len(lines) == 8


def test_rows_without_uniqueid_are_still_imported_once(phone_hub: Hub, tmp_path: Path) -> None:
    first_row = next(csv.reader(io.StringIO(MASTER_CSV)))
    path = tmp_path / "old.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerow(first_row[:16])  # an older cdr_csv without uniqueid and userfield
    assert import_cdr(phone_hub, path).imported == 1
    assert import_cdr(phone_hub, path).already == 1
    (call,) = calls(phone_hub)
    assert call.external_id.startswith("cdr:asterisk:") and len(call.external_id) == len("cdr:asterisk:") + 32


def test_the_cli_shows_a_report(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.cli import app
    from hub.settings import get_settings

    path = tmp_path / "Master.csv"
    path.write_text(MASTER_CSV, encoding="utf-8")
    for name, value in {"HUB_DATABASE_URL": hub.settings.database_url, "HUB_DATA_DIR": str(tmp_path),
                        "HUB_LIVE_BACKEND": "memory", "HUB_SECRET_KEY": "k" * 40}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["calls", "import-cdr", str(path), "--timezone", "Europe/Moscow",
                                          "--rejects", str(tmp_path / "rejects.csv")])
        bad_zone = CliRunner().invoke(app, ["calls", "import-cdr", str(path), "--timezone", "Mars/Olympus"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "4 calls imported" in result.output and "7 rows rejected (of 11)" in result.output
    assert "internal call" in result.output
    assert (tmp_path / "rejects.csv").exists()
    assert bad_zone.exit_code == 2 and "Mars/Olympus" in bad_zone.output
    assert len(calls(hub)) == 4
