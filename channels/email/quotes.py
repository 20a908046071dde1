"""Folding quoted history and signatures out of a reply's text, so the timeline shows what is new.

Nothing is thrown away: the event keeps the new text, and its data keeps the quoted history and the
signature for the UI to unfold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line that introduces quoted history, in the languages the hub's customers write.
_ATTRIBUTION = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^on\b.{0,300}\bwrote:\s*$",  # Gmail, Apple Mail, Thunderbird
        r"^le\b.{0,300}\ba écrit\s*:\s*$",
        r"^am\b.{0,300}\bschrieb.{0,100}:\s*$",
        r"^.{0,300}\b(пишет|написал|написала|написал\(а\)|пишет\(ет\))\s*:\s*$",
        r"^-{2,}\s*(original message|исходное сообщение|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
        r"^-{2,}\s*(reply above this line|ответьте выше этой строки)\s*-{2,}\s*$",
    )
]
# Outlook's header block: a rule or a From line followed by Sent/Date/To within a few lines.
_OUTLOOK_FROM = re.compile(r"^\*?(from|от|von|de)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\*?(sent|date|to|subject|отправлено|дата|кому|тема|gesendet|envoyé)\s*:", re.IGNORECASE)
_RULE = re.compile(r"^_{10,}\s*$")
_MOBILE_SIGNATURE = re.compile(
    r"^(sent from my \w+|sent from (outlook|mail) for \w+|get outlook for \w+|отправлено с (моего )?\w+"
    r"|отправлено из (мобильной )?(почты|приложения).*)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FoldedText:
    text: str
    quoted: str
    signature: str


def _quote_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        joined = stripped if i + 1 >= len(lines) else f"{stripped} {lines[i + 1].strip()}"
        if any(p.match(stripped) for p in _ATTRIBUTION):
            return i
        # "On Mon, 3 Mar 2025 at 10:00, Anna <a@example.org>\nwrote:" breaks across two lines.
        if i + 1 < len(lines) and any(p.match(joined) for p in _ATTRIBUTION[:4]):
            return i
        if _RULE.match(stripped) and any(_OUTLOOK_FROM.match(n.strip()) for n in lines[i + 1:i + 3]):
            return i
        if _OUTLOOK_FROM.match(stripped) and any(_OUTLOOK_NEXT.match(n.strip()) for n in lines[i + 1:i + 5]):
            return i
    # A trailing block of "> " lines (bottom quoting) is history too; inline quotes between new
    # paragraphs are part of the answer and stay.
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and (lines[start - 1].startswith(">") or not lines[start - 1].strip()):
        start -= 1
    if start < end and any(line.startswith(">") for line in lines[start:end]):
        return start
    return None


def fold(text: str) -> FoldedText:
    """Split a message's text into what is new, the quoted history and the signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _quote_start(lines)
    head, quoted = (lines, []) if start is None else (lines[:start], lines[start:])
    signature: list[str] = []
    for i in range(len(head) - 1, -1, -1):
        if head[i] in ("-- ", "--"):  # RFC 3676 separator (some clients lose its space)
            head, signature = head[:i], head[i + 1:]
            break
    else:
        tail = [line for line in head if line.strip()]
        if tail and _MOBILE_SIGNATURE.match(tail[-1].strip()) and len(tail) > 1:
            last = max(i for i, line in enumerate(head) if line.strip())
            head, signature = head[:last], head[last:]
    new = "\n".join(head).strip("\n")
    if not new.strip():
        # All of it looked like history (a bare forward): show it whole rather than nothing.
        return FoldedText(text=text.strip("\n"), quoted="", signature="")
    return FoldedText(text=new.rstrip(), quoted="\n".join(quoted).strip("\n"), signature="\n".join(signature).strip("\n"))
