"""The boundary between the core and its plug-ins, as imports draw it: `hub/` imports no plug-in
(lazily or not, under TYPE_CHECKING or not), and no plug-in imports another plug-in's modules: what
two of them share moves into the core (hub.html) or into a library that is no plug-in
(channels/twilio_common, shared by the SMS and phone adapters and the local Twilio server), unless
the importing plug-in declares that it builds on the other (`Plugin.requires`: analytics on campaigns'
segments and surveys)."""

from __future__ import annotations

import ast
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hub.plugin import installed, plugin_folders
from hub.settings import PROJECT_ROOT

HUB = PROJECT_ROOT / "hub"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in a file, wherever it sits (in functions, under TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _file_of(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    return Path(spec.origin).resolve()


def _units() -> list[Path]:
    """One folder per plug-in, nested plug-ins folded into the outer one (campaigns holds surveys)."""
    units: list[Path] = []
    for folder in plugin_folders():
        if not any(folder.is_relative_to(unit) for unit in units):
            units.append(folder)
    return units


def _stand_in_folders() -> list[Path]:
    folders = []
    for ep in entry_points(group="hub.stand_ins"):
        origin = _file_of(ep.value.split(":")[0])
        if origin is not None:
            folders.append(origin.parent)
    return folders


def _owner(path: Path, folders: list[Path]) -> Path | None:
    return next((folder for folder in folders if path.is_relative_to(folder)), None)


def test_the_plugins_are_found_where_the_check_looks():
    names = {cls.name for cls in installed()}
    assert {"email", "sms", "campaigns", "surveys"} <= names  # a check over nothing would pass
    assert len(_units()) >= 6


def test_the_core_imports_no_plugin():
    outside = [*_units(), *_stand_in_folders()]
    problems = []
    for path in sorted(HUB.rglob("*.py")):
        for line, module in _imports(path):
            target = _file_of(module)
            if target is not None and _owner(target, outside):
                problems.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    assert not problems, "the core must not know its plug-ins; move the shared part into hub/:\n" + "\n".join(problems)


def _required(unit: Path) -> list[Path]:
    """The folders of the plug-ins that the plug-ins in `unit` declare they require (Plugin.requires)."""
    names = {name for cls in installed() if cls.folder().is_relative_to(unit) for name in cls.requires}
    return [cls.folder() for cls in installed() if cls.name in names]


@pytest.mark.parametrize("unit", _units(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else p.name)
def test_a_plugin_imports_no_other_plugins_modules(unit):
    allowed = _required(unit)
    others = [folder for folder in [*_units(), *_stand_in_folders()] if folder != unit and not folder.is_relative_to(unit)
              and not any(req.is_relative_to(folder) or folder.is_relative_to(req) for req in allowed)]
    problems = []
    for path in sorted(unit.rglob("*.py")):
        for line, module in _imports(path):
            target = _file_of(module)
            if target is not None and _owner(target, others):
                problems.append(f"{path.name}:{line} imports {module}")
    assert not problems, f"{unit.name} reaches into another plug-in; move what they share into hub/:\n" + "\n".join(problems)


def test_channel_lists_come_from_what_channels_declare():
    """The consent list on the contact form and the channels analytics counts replies on are read from
    the channels' declarations, so a channel installed as a package (Telegram) is in them unnamed."""
    from hub.channel import Channel
    from hub.channel_hooks import consent_channels, conversation_channels

    adapters = {cls.name: cls for cls in installed() if issubclass(cls, Channel)}
    consent = consent_channels(adapters)
    assert {"email", "sms", "phone", "telegram"} <= set(consent)
    assert not {"forms", "meetings", "note"} & set(consent)
    assert {"email", "sms", "telegram"} <= set(conversation_channels())
    assert not {"phone", "forms", "meetings", "note"} & set(conversation_channels())
