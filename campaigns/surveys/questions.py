"""What a survey asks and how answers are checked: the question shapes, branching, and scores.

A survey's questions are stored as JSON on the survey row (they are read and written together, and
a response keeps its answers by question key), validated here on the way in. Branching is one rule
per question: `show_if` shows it only when an earlier score question was answered at or below a
threshold ("what went wrong?" after a low NPS). Hidden questions are never required, and answers
to them are dropped, so a changed score cannot leave a stale "what went wrong" behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campaigns.surveys.models import QuestionKind
from hub.web.i18n import N_

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_QUESTIONS = 30
MAX_TEXT_ANSWER = 5000
SCORE_KINDS = frozenset({QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.RATING})
CHOICE_KINDS = frozenset({QuestionKind.SINGLE, QuestionKind.MULTIPLE})
LOCALES = ("ru", "en")


class Texts(BaseModel):
    """One text in both languages; an empty one falls back to the other."""

    model_config = ConfigDict(extra="forbid")

    ru: str = Field(default="", max_length=2000)
    en: str = Field(default="", max_length=2000)

    def get(self, locale: str) -> str:
        return localized(self.model_dump(), locale)


def localized(texts: Mapping[str, Any] | None, locale: str) -> str:
    """The text in `locale`, else in the other language, else ''."""
    texts = texts or {}
    value = texts.get(locale) or ""
    if value:
        return str(value)
    return next((str(texts[other]) for other in LOCALES if texts.get(other)), "")


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    text: Texts

    @model_validator(mode="after")
    def _has_text(self) -> Option:
        if not (self.text.ru.strip() or self.text.en.strip()):
            raise ValueError("an option needs a text in Russian or English")
        return self


class ShowIf(BaseModel):
    """Show the question only when `question` (an earlier score) was answered at or below `max`."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(pattern=KEY_PATTERN)
    max: int = Field(ge=0, le=10)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    kind: QuestionKind
    required: bool = False
    text: Texts
    options: list[Option] = Field(default_factory=list, max_length=20)
    scale: int = Field(default=5, ge=3, le=10, description="Stars of a rating question")
    show_if: ShowIf | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if not (self.text.ru.strip() or self.text.en.strip()):
            raise ValueError(f"question {self.key!r} needs a text in Russian or English")
        if self.kind in CHOICE_KINDS:
            if len(self.options) < 2:
                raise ValueError(f"question {self.key!r} needs at least two options")
            keys = [o.key for o in self.options]
            if len(set(keys)) != len(keys):
                raise ValueError(f"question {self.key!r} has two options with the same key")
        elif self.options:
            raise ValueError(f"question {self.key!r} ({self.kind}) takes no options")
        return self

    def scores(self) -> range:
        """The values a score question takes."""
        if self.kind == QuestionKind.NPS:
            return range(0, 11)
        if self.kind == QuestionKind.CSAT:
            return range(1, 6)
        return range(1, self.scale + 1)


class QuestionList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @field_validator("questions")
    @classmethod
    def _references(cls, questions: list[Question]) -> list[Question]:
        seen: dict[str, Question] = {}
        for q in questions:
            if q.key in seen:
                raise ValueError(f"two questions have the key {q.key!r}")
            if q.show_if is not None:
                target = seen.get(q.show_if.question)
                if target is None or target.kind not in SCORE_KINDS:
                    raise ValueError(f"question {q.key!r} can only depend on an earlier score question")
                if q.show_if.max not in target.scores():
                    raise ValueError(f"question {q.key!r}: {q.show_if.max} is not a score of {target.key!r}")
            seen[q.key] = q
        return questions


def parse_questions(raw: Sequence[Mapping[str, Any]]) -> list[Question]:
    """Questions from stored or submitted JSON (pydantic ValidationError when they are not valid)."""
    return QuestionList.model_validate({"questions": list(raw)}).questions


def visible(question: Question, answers: Mapping[str, Any]) -> bool:
    """Whether the branching rule shows `question`, given the answers so far."""
    if question.show_if is None:
        return True
    score = answers.get(question.show_if.question)
    return isinstance(score, int) and score <= question.show_if.max


def clean_answers(questions: Sequence[Question], form: Mapping[str, Sequence[str]], *,
                  complete: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """(answers, errors by question key) from submitted form values (`q_<key>` → list of strings).

    Errors are message ids for N_()/gettext; answers must not be stored while there are any (a too
    long text is still returned, to be shown back). Required questions are only checked when
    `complete`; answers to questions the branching hides are dropped.
    """
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for q in questions:
        values = [v.strip() for v in form.get(f"q_{q.key}", ()) if isinstance(v, str) and v.strip()]
        if not values:
            continue
        if q.kind in SCORE_KINDS:
            try:
                score = int(values[0])
            except ValueError:
                score = -1
            if score not in q.scores():
                errors[q.key] = N_("Choose one of the values shown.")
            else:
                answers[q.key] = score
        elif q.kind == QuestionKind.SINGLE:
            keys = {o.key for o in q.options}
            if values[0] not in keys:
                errors[q.key] = N_("Choose one of the options shown.")
            else:
                answers[q.key] = values[0]
        elif q.kind == QuestionKind.MULTIPLE:
            keys = [o.key for o in q.options]
            if any(v not in keys for v in values):
                errors[q.key] = N_("Choose among the options shown.")
            else:
                answers[q.key] = [k for k in keys if k in values]
        else:
            text = values[0]
            if len(text) > MAX_TEXT_ANSWER:
                errors[q.key] = N_("This answer is too long; shorten it to 5000 characters.")
            answers[q.key] = text  # kept even when too long, so the page shows it back for shortening
    for q in questions:
        if not visible(q, answers):
            answers.pop(q.key, None)
            errors.pop(q.key, None)
        elif complete and q.required and q.key not in answers and q.key not in errors:
            errors[q.key] = N_("Please answer this question.")
    return answers, errors


def headline_scores(questions: Sequence[Question], answers: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(NPS, CSAT): the answers to the first NPS and the first CSAT question."""
    nps = next((answers.get(q.key) for q in questions if q.kind == QuestionKind.NPS), None)
    csat = next((answers.get(q.key) for q in questions if q.kind == QuestionKind.CSAT), None)
    return (nps if isinstance(nps, int) else None), (csat if isinstance(csat, int) else None)


def describe(questions: Sequence[Question], answers: Mapping[str, Any], locale: str) -> list[tuple[str, str]]:
    """(question text, answer as text) for every answered question, in order: timeline, task notes, CSV."""
    out = []
    for q in questions:
        if q.key not in answers:
            continue
        value = answers[q.key]
        if q.kind in CHOICE_KINDS:
            labels = {o.key: o.text.get(locale) for o in q.options}
            chosen = value if isinstance(value, list) else [value]
            text = ", ".join(labels.get(k, k) for k in chosen)
        elif q.kind == QuestionKind.NPS:
            text = f"{value}/10"
        elif q.kind == QuestionKind.CSAT:
            text = f"{value}/5"
        elif q.kind == QuestionKind.RATING:
            text = f"{value}/{q.scale}"
        else:
            text = str(value)
        out.append((q.text.get(locale), text))
    return out
