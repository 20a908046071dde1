"""Users (argon2 password hashes), roles, and hashed, scoped, revocable API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import argon2
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.identities import normalize_email
from hub.models import ActorKind, ApiKey, Role, User
from hub.translatable import N_, TranslatableError

# RFC 9106's second recommended profile (argon2id, 64 MiB, 3 passes): argon2-cffi's default.
PASSWORD_PARAMETERS = argon2.profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)

# What each role may do; API keys carry an explicit subset.
SCOPES = (
    "contacts:read",
    "contacts:write",
    "timeline:read",
    "timeline:write",
    "events:write",
    "deliveries:write",
    "tasks:read",
    "tasks:write",
    "campaigns:read",
    "campaigns:write",
    "surveys:read",
    "surveys:write",
    "forms:read",
    "forms:write",
    "meetings:read",
    "meetings:write",
    "analytics:read",
    "admin",
)
_AGENT = frozenset(
    {"contacts:read", "contacts:write", "timeline:read", "timeline:write", "deliveries:write", "tasks:read", "tasks:write",
     "meetings:read", "meetings:write", "forms:read"}
)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.AGENT: _AGENT,
    Role.MARKETER: _AGENT | {"campaigns:read", "campaigns:write", "surveys:read", "surveys:write", "forms:write",
                                 "analytics:read"},
    Role.ADMIN: frozenset(SCOPES),
}
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a signed-in user, an API key, or the system itself."""

    kind: ActorKind
    id: int | None
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def actor(self) -> str:
        """How the audit log names this principal ("user:3", "api_key:5", "system")."""
        return self.kind.value if self.id is None else f"{self.kind.value}:{self.id}"

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == ActorKind.USER else None


SYSTEM = Principal(ActorKind.SYSTEM, None, "system", frozenset(SCOPES))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise TranslatableError(N_("A password needs at least %(length)s characters."), length=MIN_PASSWORD_LENGTH)
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_user(session: Session, *, email: str, password: str, role: Role, display_name: str = "",
                locale: str | None = None, time_zone: str | None = None) -> User:
    address = normalize_email(email)
    if session.scalars(select(User).where(User.email == address)).first() is not None:
        raise TranslatableError(N_("A user with the email %(address)s already exists."), address=address)
    user = User(email=address, display_name=display_name or address, role=Role(role), password_hash=hash_password(password),
                locale=locale, time_zone=time_zone)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The active user with these credentials, or None (always spends one hash verification)."""
    try:
        address = normalize_email(email)
    except ValueError:
        address = ""
    user = session.scalars(select(User).where(User.email == address)).first() if address else None
    if user is None or not user.is_active:
        _hasher.hash("timing-equaliser")  # unknown users cost as much as wrong passwords
        return None
    if not verify_password(user, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def change_password(session: Session, user: User, new_password: str) -> None:
    """Set a new password and end every other session of this user."""
    user.password_hash = hash_password(new_password)
    user.session_version += 1


def user_principal(user: User) -> Principal:
    return Principal(ActorKind.USER, user.id, user.display_name or user.email, ROLE_SCOPES[user.role], role=user.role)


KEY_PREFIX = "hub_"


def _digest(key: str) -> str:
    # API keys are 256-bit random strings, so a fast hash is enough (no brute force is feasible).
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, *, name: str, scopes: list[str], created_by: int | None = None) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned once and never stored."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"unknown or missing scopes {sorted(unknown)}; choose from {', '.join(SCOPES)}")
    prefix = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=prefix, key_hash=_digest(plain), scopes=sorted(set(scopes)), created_by=created_by)
    session.add(key)
    session.flush()
    return key, plain


def api_key_principal(session: Session, plain: str) -> Principal | None:
    """The principal for a presented key, or None if it is unknown or revoked."""
    if not plain.startswith(KEY_PREFIX):
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == _digest(plain))).first()
    if key is None or key.revoked_at is not None:
        return None
    return Principal(ActorKind.API_KEY, key.id, key.name, frozenset(key.scopes))


def revoke_api_key(session: Session, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = clock.now()
