"""The local server's own page: text or call the hub as a customer would, and see what Twilio saw."""

from __future__ import annotations

import io
import wave
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from standins.twilio_local.server import LocalTwilio


@lru_cache(maxsize=1)
def silence_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short silent recording, so a voicemail link in the demo plays something."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def demo_page(server: LocalTwilio) -> str:
    numbers = "".join(f"<option>{escape(n)}</option>" for n in server.numbers)
    recent = "".join(
        f"<tr><td>{escape(m['sid'])}</td><td>{escape(str(m['to']))}</td><td>{escape(m['status'])}</td>"
        f"<td>{escape(str(m['body'])[:80])}</td></tr>"
        for m in list(server.messages.values())[-20:]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local Twilio</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto}}
fieldset{{margin-bottom:1rem}}label{{display:block;margin:.3rem 0}}td{{padding:0 .5rem}}</style></head>
<body><h1>Local Twilio</h1>
<p>Stands in for Twilio while you try the hub: texts and calls below reach the hub's webhooks signed
as Twilio signs them; SMS the hub sends show up in the table with their status.</p>
<fieldset><legend>Text the hub</legend><form method="post" action="/_local/sms">
<label>From <input name="from" value="+15005550006"></label>
<label>To <select name="to">{numbers}</select></label>
<label>Message <input name="body" size="60" value="Hello! Try STOP and START too."></label>
<button>Send SMS</button></form></fieldset>
<fieldset><legend>Call the hub</legend><form method="post" action="/_local/calls">
<label>From <input name="from" value="+15005550006"></label>
<label>To <select name="to">{numbers}</select></label>
<label>Voicemail seconds (0: hang up) <input name="voicemail_seconds" value="7" size="4"></label>
<button>Call</button></form></fieldset>
<h2>Messages sent through this server</h2><table><tr><th>SID</th><th>To</th><th>Status</th><th>Body</th></tr>{recent}</table>
<p><a href="/_local/state">State as JSON</a></p></body></html>"""
