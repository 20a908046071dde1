"""Post-sale feedback surveys answered through signed links."""

from campaigns.surveys.extension import SurveysExtension

__all__ = ["SurveysExtension"]
