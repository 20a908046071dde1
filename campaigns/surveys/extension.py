"""What the hub loads from the `hub.extensions` entry point `surveys`."""

from __future__ import annotations

from hub.extensions import Extension


class SurveysExtension(Extension):
    name = "surveys"
