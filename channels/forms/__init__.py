"""Website forms: admin-defined forms with a hosted page, an embed snippet and a JSON endpoint."""

from channels.forms.channel import FormsChannel

__all__ = ["FormsChannel"]
