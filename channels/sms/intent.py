"""Whether an inbound SMS asks the hub to stop texting, in English or Russian (pure: text in, verdict out).

Since April 2025 US rules require honouring a revocation made "by any reasonable means", not only
Twilio's exact keywords. Three answers:
- OPT_OUT: a keyword whatever its punctuation and case ("Stop.", "стоп!", "STOP STOP 🛑"), or an
  unmistakable phrase ("please stop texting me", "не пишите мне больше"): consent is withdrawn;
- POSSIBLE: an opt-out word in a sentence that may mean something else ("can you stop by
  tomorrow", "stop sending me the wrong invoices?", "don't unsubscribe me"): a person decides;
- None: an ordinary message.

Text is compared after NFKC and casefolding, with ё read as е and every punctuation mark, symbol
and emoji read as a space, so "S.T.O.P" is not a keyword but "stop!!!" and "Стоп." are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from channels.twilio_common.keywords import KEYWORDS, Keyword


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    POSSIBLE = "possible_opt_out"


@dataclass(frozen=True)
class Verdict:
    intent: Intent
    language: str  # "en" or "ru": the language to confirm in
    reason: str  # what matched: "keyword", "phrase" or the word that made it possible


def normalize(text: str | None) -> str:
    """Casefolded NFKC words, ё as е, punctuation, symbols and emoji as spaces, single-spaced."""
    folded = unicodedata.normalize("NFKC", text or "").casefold().replace("ё", "е")
    kept = []
    for char in folded:
        category = unicodedata.category(char)
        if category[0] in "PSZ" or char in "\t\r\n":
            kept.append(" ")
        elif category in ("Cf", "Mn", "Me", "Cc", "Co", "Cs"):  # joiners, variation selectors, marks
            continue
        else:
            kept.append(char)
    return " ".join("".join(kept).split())


_EN_KEYWORDS = {word.casefold() for word, kind in KEYWORDS.items() if kind == Keyword.OPT_OUT} | {
    "stop all", "opt out", "unsub", "remove me", "stop it"}
_RU_KEYWORDS = {"стоп", "отписаться", "отписка", "отписаться от рассылки", "отпишите", "отпишите меня",
                "стоп рассылка", "хватит", "стоп все", "отмена рассылки"}
# Words that may surround a keyword without changing it ("stop please", "стоп, спасибо").
_FILLER = {"please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "ok", "okay",
           "пожалуйста", "спасибо", "срочно", "уже", "все", "плиз"}

_NEGATED = r"(?<!\S)(?:don t|dont|do not|never|please don t|не надо|не нужно|не)\s+"
_EN_PHRASES = [
    r"\bunsubscribe me\b", r"\bopt me out\b", r"\b(?:i want to |i d like to |i would like to )?opt(?:ing)? out\b",
    r"\bi want to unsubscribe\b", r"\bplease unsubscribe\b", r"\bunsubscribe me from\b",
    r"\bstop (?:texting|messaging|contacting|spamming|bothering) me\b",
    r"\bstop (?:sending|send) me (?:texts|messages|sms|these|this|any more|anymore)\b",
    r"\bstop (?:sending|send) (?:texts|messages|sms)\b",
    r"\b(?:don t|dont|do not) (?:text|message|contact|sms) me\b",
    r"\bno more (?:texts|messages|sms|texting)\b",
    r"\bremove (?:me|my number) from\b", r"\btake (?:me|my number) off\b",
    r"\bi (?:don t|dont|do not) want (?:to receive |to get )?(?:any )?(?:more )?(?:your )?(?:texts|messages|sms)\b",
    r"\bleave me alone\b", r"\bstop all (?:texts|messages)\b",
]
_RU_PHRASES = [
    r"\bне (?:пишите|присылайте|отправляйте|шлите|беспокойте)\b",
    r"\bне (?:надо|нужно) (?:мне )?(?:больше )?(?:писать|присылать|слать|отправлять)\b",
    r"\b(?:перестаньте|прекратите|хватит) (?:мне )?(?:писать|присылать|отправлять|слать|рассылку|спамить|беспокоить)\b",
    r"\bпрекратите рассылку\b", r"\bотпишите меня\b", r"\bхочу отписаться\b", r"\bотписаться от\b",
    r"\bудалите (?:меня|мой номер)\b", r"\bуберите (?:меня|мой номер)\b",
    r"\bбольше не (?:пишите|присылайте|отправляйте|шлите)\b",
    r"\bотказываюсь от (?:рассылки|сообщений|смс)\b", r"\bне хочу (?:получать )?(?:ваши )?(?:смс|сообщения|рассылку)\b",
]
# Words that make a message worth a person's look when nothing above decided it.
_EN_TRIGGERS = re.compile(r"\b(?:stop(?:all)?|unsubscrib\w*|unsub|opt(?:ing)? ?out|optout|revoke|remove me|spam)\b")
_RU_TRIGGERS = re.compile(r"\b(?:стоп|отпис\w*|хватит|прекрат\w*|перестан\w*|не пиш\w*|не присыл\w*|рассылк\w*|спам)\b")
_CYRILLIC = re.compile(r"[а-я]")
# Compiled once, in the order they are tried: every inbound SMS body is read against all of them.
_PHRASES = [(re.compile(pattern), pattern.startswith(r"\bне ")) for pattern in _EN_PHRASES + _RU_PHRASES]
_NEGATED_AT_END = re.compile(_NEGATED + "$")


def _language(words: str) -> str:
    return "ru" if _CYRILLIC.search(words) else "en"


def _is_keyword(words: str) -> bool:
    tokens = words.split()
    core = " ".join(t for t in tokens if t not in _FILLER)
    if not core:
        return False
    if core in _EN_KEYWORDS or core in _RU_KEYWORDS:
        return True
    # "stop stop stop", "СТОП СТОП"
    distinct = set(core.split())
    return len(distinct) == 1 and next(iter(distinct)) in _EN_KEYWORDS | _RU_KEYWORDS


def classify(body: str | None) -> Verdict | None:
    """OPT_OUT, POSSIBLE or None for an inbound SMS body."""
    words = normalize(body)
    if not words:
        return None
    language = _language(words)
    if _is_keyword(words):
        return Verdict(Intent.OPT_OUT, language, "keyword")
    for pattern, negative in _PHRASES:
        found = pattern.search(words)
        if found is None:
            continue
        # "please don't unsubscribe me" names the phrase to refuse it; "не пишите" is itself negative.
        before = words[:found.start()]
        if not negative and _NEGATED_AT_END.search(before + " " if before else ""):
            return Verdict(Intent.POSSIBLE, language, found.group(0))
        return Verdict(Intent.OPT_OUT, language, "phrase")
    trigger = _EN_TRIGGERS.search(words) or _RU_TRIGGERS.search(words)
    if trigger is not None:
        return Verdict(Intent.POSSIBLE, language, trigger.group(0))
    return None


# The one confirmation a customer gets when the hub (not Twilio) recognised the opt-out, in the
# language they wrote in; Twilio's own reply covers its exact keywords.
CONFIRMATIONS = {
    "en": "You are unsubscribed and will get no more texts from us. Reply START to subscribe again.",
    "ru": "Вы отписались и больше не будете получать от нас SMS. Чтобы подписаться снова, ответьте START.",
}
