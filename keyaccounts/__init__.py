"""Key-account management: who really makes the profit (margin minus cost to serve), the Pareto
choice of key accounts, and (next) the temperature of each key relationship. docs/accounts.md."""

from keyaccounts.extension import KeyAccountsExtension

__all__ = ["KeyAccountsExtension"]
