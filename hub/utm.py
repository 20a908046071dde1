"""UTM parameters (utm_source, utm_medium, utm_campaign, utm_term, utm_content) read from a URL, so a
form submission or a tracked click keeps where the visitor came from in its event's data ("utm")."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
MAX_VALUE = 200


def utm_params(url: str | None) -> dict[str, str]:
    """{"source": …, "medium": …} for the utm_* parameters the URL carries (first value, trimmed); {} if none."""
    if not url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        name = key.lower().removeprefix("utm_")
        if key.lower().startswith("utm_") and name in UTM_KEYS and name not in found and value.strip():
            found[name] = value.strip()[:MAX_VALUE]
    return found
