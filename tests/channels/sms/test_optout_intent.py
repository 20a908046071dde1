"""The opt-out classifier's table: how people ask to stop, in English and Russian, and what must not count."""

from __future__ import annotations

import pytest

from channels.sms.intent import Intent, classify, normalize

OUT, MAYBE, NO = Intent.OPT_OUT, Intent.POSSIBLE, None

TABLE = [
    # Keywords, whatever the punctuation, case, spacing and emoji.
    ("STOP", OUT, "en"), ("Stop.", OUT, "en"), ("stop!", OUT, "en"), ("  sToP!!! ", OUT, "en"),
    ("Stop 🛑", OUT, "en"), ("ＳＴＯＰ", OUT, "en"), ("st\u200bop", OUT, "en"), ("STOP STOP STOP", OUT, "en"),
    ("stopall", OUT, "en"), ("Stop all", OUT, "en"), ("UNSUBSCRIBE.", OUT, "en"), ("cancel", OUT, "en"),
    ("End", OUT, "en"), ("quit!", OUT, "en"), ("revoke", OUT, "en"), ("OPTOUT", OUT, "en"),
    ("opt-out", OUT, "en"), ("Opt out", OUT, "en"), ("stop please", OUT, "en"), ("Please stop.", OUT, "en"),
    ("СТОП", OUT, "ru"), ("Стоп.", OUT, "ru"), ("стоп!!!", OUT, "ru"), ("ОТПИСАТЬСЯ", OUT, "ru"),
    ("Отписка", OUT, "ru"), ("стоп, пожалуйста", OUT, "ru"), ("Отпишите меня, пожалуйста!", OUT, "ru"),
    # Phrases.
    ("unsubscribe me", OUT, "en"), ("Please stop texting me", OUT, "en"), ("opt me out", OUT, "en"),
    ("I want to opt out", OUT, "en"), ("Stop sending me these messages!", OUT, "en"),
    ("Don't text me again", OUT, "en"), ("do not contact me", OUT, "en"), ("No more texts please", OUT, "en"),
    ("Remove me from your list", OUT, "en"), ("take my number off your list", OUT, "en"),
    ("I don't want any more messages", OUT, "en"), ("leave me alone!!", OUT, "en"),
    ("не пишите мне больше", OUT, "ru"), ("Не пишите мне больше!", OUT, "ru"),
    ("Пожалуйста, перестаньте мне писать", OUT, "ru"), ("прекратите рассылку", OUT, "ru"),
    ("хочу отписаться от рассылки", OUT, "ru"), ("Удалите мой номер из базы", OUT, "ru"),
    ("больше не присылайте", OUT, "ru"), ("не надо мне больше писать", OUT, "ru"),
    ("Отказываюсь от рассылки", OUT, "ru"), ("Не присылайте мне СМС", OUT, "ru"), ("не беспокойте меня", OUT, "ru"),
    ("Хватит слать мне это", OUT, "ru"), ("Ещё раз напишете — пожалуюсь. Не пишите!", OUT, "ru"),
    # Possibly: an opt-out word in a sentence that may mean something else. A person decides.
    ("stop sending me the wrong invoices?", MAYBE, "en"), ("can you stop by tomorrow", MAYBE, "en"),
    ("please don't unsubscribe me", MAYBE, "en"), ("Don't stop, I love these deals", MAYBE, "en"),
    ("How do I unsubscribe?", MAYBE, "en"), ("is this spam?", MAYBE, "en"), ("yes stop", MAYBE, "en"),
    ("Стоп, я перепутал адрес", MAYBE, "ru"), ("как отписаться?", MAYBE, "ru"),
    ("Рассылка пришла дважды", MAYBE, "ru"), ("не отписывайте меня", MAYBE, "ru"),
    # Ordinary messages.
    ("Hello, is my order ready?", NO, "en"), ("cancel my appointment on Friday", NO, "en"),
    ("See you at the end of the week", NO, "en"), ("I quit smoking, thanks for the tips", NO, "en"),
    ("S.T.O.P", NO, "en"), ("my parcel stopped moving", NO, "en"), ("", NO, "en"), ("👍", NO, "en"),
    ("Спасибо, всё получил", NO, "ru"), ("Можно перенести встречу на пятницу?", NO, "ru"),
    ("Ещё одно: где мой заказ?", NO, "ru"),
]


def test_the_table_is_wide():
    assert len(TABLE) >= 40
    assert {lang for _, _, lang in TABLE} == {"en", "ru"}
    assert sum(1 for _, want, _ in TABLE if want is not OUT) >= 15


@pytest.mark.parametrize(("text", "want", "language"), TABLE, ids=[t[0] or "<empty>" for t in TABLE])
def test_phrasing(text, want, language):
    verdict = classify(text)
    assert (verdict.intent if verdict else None) == want, verdict
    if verdict is not None:
        assert verdict.language == language


def test_normalize_folds_case_width_yo_and_punctuation():
    assert normalize("  ОТПИСЁТЕСЬ… «Стоп»!! 🛑\u2003ＳＴＯＰ\u200d ") == "отписетесь стоп stop"
