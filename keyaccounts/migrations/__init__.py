"""Alembic revisions of the keyaccounts tables: a branch of their own (hub/migrate.py)."""
