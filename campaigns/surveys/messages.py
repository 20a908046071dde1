"""The invitation and reminder a contact receives, in the contact's language: a mail (subject, HTML,
text) on a channel that carries one, a short text with the link on any other (SMS, Telegram)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns.surveys.links import url_for
from campaigns.surveys.models import QuestionKind, Survey, SurveyInvitation
from campaigns.surveys.questions import localized, parse_questions
from hub.web import i18n
from hub.web.pages import ENV

if TYPE_CHECKING:
    from hub.settings import Settings


def _context(settings: Settings, survey: Survey, invitation: SurveyInvitation, *, locale: str,
             name: str, reminder: bool) -> dict[str, Any]:
    translations = i18n.package_translations(locale, "surveys")
    questions = parse_questions(survey.questions)
    first = questions[0]
    # The first NPS question goes into the email itself: each score is a link that opens the
    # page with that score filled in (following a link never records anything on its own, so a
    # mail scanner that fetches every link cannot answer for the customer).
    embedded = None
    if first.kind == QuestionKind.NPS and first.show_if is None:
        embedded = {"text": first.text.get(locale),
                    "links": [(score, url_for(settings, invitation, score=score)) for score in first.scores()]}
    return {
        "_": translations.gettext,
        "gettext": translations.gettext,
        "locale": locale,
        "name": name,
        "title": localized(survey.title, locale) or survey.name,
        "intro": localized(survey.intro, locale),
        "url": url_for(settings, invitation),
        "embedded": embedded,
        "reminder": reminder,
    }


def email_content(settings: Settings, survey: Survey, invitation: SurveyInvitation, *, locale: str, name: str,
                  reminder: bool = False) -> dict[str, Any]:
    """Subject, text and HTML of the invitation (or its reminder)."""
    ctx = _context(settings, survey, invitation, locale=locale, name=name, reminder=reminder)
    _ = ctx["gettext"]
    subject = ctx["title"] or _("A quick question about your experience")
    if reminder:
        subject = _("Reminder: %(subject)s") % {"subject": subject}
    return {
        "subject": " ".join(subject.split())[:200],
        "text": ENV.get_template("messages/surveys/invitation.txt").render(ctx),
        "html": ENV.get_template("messages/surveys/invitation.html").render(ctx),
    }


def sms_content(settings: Settings, survey: Survey, invitation: SurveyInvitation, *, locale: str, name: str,
                reminder: bool = False) -> dict[str, Any]:
    ctx = _context(settings, survey, invitation, locale=locale, name=name, reminder=reminder)
    _ = ctx["gettext"]
    title = ctx["title"].strip()
    if title and title[-1] not in ".!?…":
        title += "."
    text = _("%(title)s Please tell us how we did: %(url)s") % {"title": title, "url": ctx["url"]}
    if reminder:
        text = _("Reminder: %(subject)s") % {"subject": text}
    return {"text": " ".join(text.split())}


def content_for(settings: Settings, survey: Survey, invitation: SurveyInvitation, *, parts: set[str], locale: str,
                name: str, reminder: bool = False) -> dict[str, Any]:
    """The invitation as a channel carrying `parts` can hold it: the mail where it has a subject, the
    short text otherwise."""
    if "subject" in parts:
        mail = email_content(settings, survey, invitation, locale=locale, name=name, reminder=reminder)
        return {key: value for key, value in mail.items() if key in parts}
    return sms_content(settings, survey, invitation, locale=locale, name=name, reminder=reminder)
