"""CSV import writes a whole file or nothing, naming every bad line; export streams what import reads back."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from hub.auth import SYSTEM, create_user
from hub.contacts import IdentityIn, create_contact
from hub.csvio import detect_delimiter, export_contacts, import_contacts
from hub.merge import merge_contacts
from hub.models import AuditEntry, Contact, Identity, MergeRecord, Role, User

REGION = "RU"


def counts(hub) -> tuple[int, int, int]:
    with hub.session(read_only=True) as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Contact, Identity, AuditEntry))  # type: ignore[return-value]


def run_import(hub, text: str, progress=None):
    with hub.session() as s:
        result = import_contacts(s, stream=io.StringIO(text, newline=""), actor=SYSTEM, region=REGION,
                                 progress=progress, source="test.csv")
        if result.ok:
            s.commit()
    return result


def export_text(hub, **kw) -> str:
    with hub.session(read_only=True) as s:
        return "".join(export_contacts(s, **kw))


def person(hub, name, *idents, **fields) -> int:
    with hub.session() as s, s.begin():
        return create_contact(s, actor=SYSTEM, region=REGION, display_name=name,
                              identities=[IdentityIn(kind=k, value=v) for k, v in idents], **fields).id  # type: ignore[return-value]


BAD_FILE = (
    "name,email,phone,tags,attr:note\r\n"                                     # line 1
    'Good One,one@example.com,+79160000001,vip,"first line\r\n'               # line 2
    'second line"\r\n'                                                        # line 3
    "Bad Email,not-an-email,,,\r\n"                                           # line 4
    "Good Two,two@example.com,,,\r\n"                                         # line 5
    '"Multi\r\nLine Name",,12,,\r\n'                               # lines 6-7
    "\r\n"                                                                    # line 8, blank
    "Dup,ONE@example.com,,,\r\n"                                              # line 9
    "Too,many@example.com,,,,extra\r\n"                                       # line 10
)


def test_bad_rows_are_reported_by_line_and_nothing_is_written(hub):
    person(hub, "Existing", ("email", "two@example.com"))
    before = counts(hub)
    result = run_import(hub, BAD_FILE)
    assert not result.ok and result.rows == 6 and result.rejected == 4
    assert [(e.line, e.column) for e in result.errors] == [(4, "email"), (6, "phone"), (9, "email"), (10, None)]
    assert "also on line 2" in result.errors[2].message
    assert "6 fields but the header has 5" in result.errors[3].message
    assert counts(hub) == before
    with hub.session() as s:
        assert s.scalars(select(Contact.display_name)).all() == ["Existing"]


def test_header_must_name_known_columns(hub):
    result = run_import(hub, "name,e-mail,Phone,attr:,colour\nA,a@example.com,,x,red\n")
    messages = [(e.line, e.message) for e in result.errors]
    assert all(line == 1 for line, _ in messages)
    assert any("unknown columns: e-mail, colour" in m for _, m in messages)
    assert any("attribute column needs a key" in m for _, m in messages)
    assert counts(hub) == (0, 0, 0)
    assert run_import(hub, "").errors[0].message.startswith("the file is empty")
    assert "needs a name, email or phone" in run_import(hub, "tags,locale\nvip,ru\n").errors[0].message


def test_field_rules_name_the_column(hub):
    with hub.session() as s, s.begin():
        create_user(s, email="owner@example.com", password="correct horse battery", role=Role.AGENT)
    text = ("name,locale,time_zone,owner_email,lifecycle_stage\n"
            "A,de,Europe/Moscow,owner@example.com,lead\n"
            "B,ru,Moon/Base,nobody@example.com,lead\n"
            ",,,,\n"
            ",ru,,,\n")
    result = run_import(hub, text)
    assert [(e.line, e.column) for e in result.errors] == [(2, "locale"), (3, "time_zone"), (3, "owner_email"), (5, None)]
    assert result.rejected == 3
    assert counts(hub)[0] == 0


def test_rows_update_known_contacts_by_email_or_phone(hub):
    ivan = person(hub, "Иван", ("phone", "+79161234567"), tags=["old"], attributes={"city": "Тверь", "keep": "yes"})
    anna = person(hub, "Anna", ("email", "anna@example.com"))
    text = ("\ufeffname;email;phone;tags;attr:city\r\n"
            "Иван Петров;ivan@example.com;8 (916) 123-45-67;vip,b2b;Москва\r\n"
            ";ANNA@example.com;;;\r\n"
            "Новый Человек;new@example.com;;;\r\n")
    result = run_import(hub, text)
    assert result.ok, result.errors
    assert (result.created, result.updated, result.unchanged, result.rows) == (1, 1, 1, 3)
    with hub.session() as s:
        contact = s.get(Contact, ivan)
        assert contact.display_name == "Иван Петров" and contact.search_name == "иван петров"
        assert contact.tags == ["old", "vip", "b2b"]
        assert contact.attributes == {"city": "Москва", "keep": "yes"}
        assert set(s.scalars(select(Identity.value).where(Identity.contact_id == ivan))) == {
            "+79161234567", "ivan@example.com"}
        assert s.get(Contact, anna).display_name == "Anna"
        assert s.scalar(select(func.count()).select_from(Contact)) == 3
        summary = s.scalars(select(AuditEntry).where(AuditEntry.action == "contacts.import")).one()
        assert summary.changes["created"] == 1 and summary.entity_id == "test.csv"
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.contact_id == ivan)
                         .order_by(AuditEntry.id)).all()[-2:] == [
            "contact.import", "contact.identity.add"]


def test_a_row_matching_two_contacts_or_one_contact_twice_is_rejected(hub):
    a = person(hub, "A", ("email", "a@example.com"))
    b = person(hub, "B", ("phone", "+79160000002"), ("email", "b@example.com"))
    result = run_import(hub, "name,email,phone\nX,a@example.com,+79160000002\nY,,+79160000002\nZ,a@example.com,\n")
    assert [(e.line, e.column) for e in result.errors] == [(2, None), (3, "phone"), (4, "email")]
    assert f"({a}, {b})" in result.errors[0].message
    result = run_import(hub, "name,email,phone\nX,a@example.com,\nY,,+7 916 000 00 02\nZ,B@example.com,\n")
    assert [(e.line, e.message) for e in result.errors] == [(4, f"line 3 already updates the same contact ({b})")]


def test_bad_encoding_is_reported(hub):
    with hub.session() as s:
        stream = io.TextIOWrapper(io.BytesIO("name\nИван\n".encode("cp1251")), encoding="utf-8-sig", newline="")
        result = import_contacts(s, stream=stream, actor=SYSTEM, region=REGION)
    assert not result.ok and "not UTF-8" in result.errors[0].message


def test_progress_reports_both_passes(hub):
    seen = []
    result = run_import(hub, "name\nA\nB\nC\n", progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert result.created == 3
    assert seen == [("checking", 1, None), ("checking", 2, None), ("checking", 3, None),
                    ("writing", 1, 3), ("writing", 2, 3), ("writing", 3, 3)]


def test_delimiter_detection():
    assert detect_delimiter("name;email;tags\nA;a@x.ru;\"x,y\"\n") == ";"
    assert detect_delimiter("name,email,tags\nA,a@x.ru,\"x;y\"\n") == ","
    assert detect_delimiter("name\nA\n") == ","
    assert detect_delimiter("name;email") == ";"


def seed_for_round_trip(hub) -> None:
    with hub.session() as s, s.begin():
        create_user(s, email="owner@example.com", password="correct horse battery", role=Role.AGENT)
    with hub.session() as s:
        owner_id = s.scalars(select(User.id)).one()
    person(hub, 'Ольга "Оля", Смирнова', ("email", "olga@example.com"), ("email", "olga@work.example"),
           ("phone", "+79161112233"), tags=["vip", "b2b"], locale="ru", time_zone="Europe/Moscow",
           owner_id=owner_id, lifecycle_stage="customer", attributes={"city": "Москва", "note": "two\nlines"})
    person(hub, "=cmd|' /C calc'!A0", ("phone", "+44 20 7946 0958"), attributes={"plan": "gold"})
    person(hub, "Nameless Phone", ("phone", "+7 495 111-22-33"))
    gone = person(hub, "Duplicate", ("email", "dupe@example.com"))
    keep = person(hub, "Keeper", ("email", "keeper@example.com"))
    with hub.session() as s, s.begin():
        merge_contacts(s, survivor_id=keep, merged_id=gone, actor=SYSTEM)


@pytest.mark.parametrize("excel", [False, True])
def test_export_reimports_to_the_same_contacts(hub, excel):
    seed_for_round_trip(hub)
    first = export_text(hub, excel=excel)
    assert first.count("Duplicate") == 0  # merged contacts are not exported on their own
    if excel:
        assert first.startswith("\ufeffname;email;phone") and "'=cmd" in first and "'+79161112233" in first
    # Importing into the same store changes nothing.
    result = run_import(hub, first)
    assert result.ok and (result.created, result.updated, result.unchanged) == (0, 0, 4)
    # Into an empty store it recreates them: a second export is the same file.
    with hub.session() as s, s.begin():
        s.execute(delete(MergeRecord))
        s.execute(delete(Identity))
        s.execute(delete(Contact).where(Contact.merged_into.is_not(None)))
        s.execute(delete(Contact))
    result = run_import(hub, first)
    assert result.ok, result.errors
    assert result.created == 4
    assert export_text(hub, excel=excel) == first
    with hub.session() as s:
        olga = s.scalars(select(Contact).where(Contact.display_name.like("Ольга%"))).one()
        assert olga.attributes == {"city": "Москва", "note": "two\nlines"}
        assert olga.tags == ["vip", "b2b"] and olga.owner_id is not None
        assert s.scalars(select(Contact.display_name).where(Contact.display_name.like("=%"))).one() == "=cmd|' /C calc'!A0"


# The command line.

@pytest.fixture
def cli_env(hub, monkeypatch, tmp_path):
    from hub.settings import get_settings

    monkeypatch.setenv("HUB_DATABASE_URL", hub.settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("HUB_SECRET_KEY", "cli-secret-" + "x" * 32)
    monkeypatch.setenv("HUB_LIVE_BACKEND", "memory")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_import_lists_rejected_lines_and_exits_1(hub, cli_env, tmp_path):
    from hub.cli import app

    path = tmp_path / "contacts.csv"
    path.write_text(BAD_FILE, encoding="utf-8", newline="")
    result = CliRunner().invoke(app, ["contacts", "import", str(path)])
    assert result.exit_code == 1, result.output
    rows = [[cell.strip() for cell in r.strip("│").split("│")] for r in result.stdout.splitlines() if r.startswith("│")]
    reported = [(r[0], r[1]) for r in rows if r[0]]
    assert reported == [("4", "email"), ("6", "phone"), ("9", "email"), ("10", "")]
    assert "also on line 2" in result.stdout
    assert "Nothing was imported" in result.output and "4 of 6 rows" in result.output
    assert counts(hub) == (0, 0, 0)


def test_cli_import_and_export(hub, cli_env, tmp_path):
    from hub.cli import app

    path = tmp_path / "good.csv"
    path.write_text("\ufeffname;phone;tags\nИван;8 916 123 45 67;vip\nАнна;+7 903 555 00 00;\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["contacts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    with hub.session() as s:
        assert set(s.scalars(select(Identity.value))) == {"+79161234567", "+79035550000"}
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["contacts", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines()[1:] == ["Иван,,+79161234567,vip,,,,lead",
                                                                "Анна,,+79035550000,,,,,lead"]
    result = CliRunner().invoke(app, ["contacts", "export"])
    assert result.exit_code == 0 and result.stdout.startswith("name,email,phone,tags")
