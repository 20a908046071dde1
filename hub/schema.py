"""Every table the installed code defines: the hub's own, the web UI's, and each adapter's.

Alembic, the test set-up and anything else that needs the whole schema call `metadata()`, so a
channel package's tables are never missed because nothing happened to import it yet."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel


def metadata() -> MetaData:
    """Import every module that defines tables, then return the shared metadata."""
    import hub.models  # noqa: F401
    import hub.suppression  # noqa: F401
    import hub.throttle  # noqa: F401
    import hub.web.models  # noqa: F401
    from hub.extensions import import_all
    from hub.registry import default_registry

    default_registry()  # importing each adapter registers its tables
    import_all()  # and each extension's (campaigns, surveys)
    return SQLModel.metadata
