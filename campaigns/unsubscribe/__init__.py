"""Unsubscribe: signed one-click links (RFC 8058), a confirmation page link scanners cannot trigger,
and a preferences page per contact. Marketing SMS carry opt-out wording.

What other packages call: `unsubscribe_url`, `preferences_url`, `email_unsubscribe_fields`,
`sms_opt_out_text` (campaigns.unsubscribe.links) and the public routes in
`campaigns.unsubscribe.routes.router`.
"""

from campaigns.unsubscribe.links import (
    email_unsubscribe_fields,
    preferences_url,
    sms_opt_out_text,
    unsubscribe_url,
)

__all__ = ["email_unsubscribe_fields", "preferences_url", "sms_opt_out_text", "unsubscribe_url"]
