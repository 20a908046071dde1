"""Alembic revisions of hub-telegram: a branch of their own (label `telegram`), see hub/migrate.py."""
