"""Request dependencies: settings, database session, Temporal connection and authentication.

Auth is `Authorization: Bearer <key>`. The admin key (settings) only creates practices; every
other endpoint takes a practice's API key (table api_key, stored as a sha256 hash), whose role
decides what it may do (api/authz.py) and which sees only its own practice."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.authz import Permission, allowed
from api.temporal import TemporalConnection
from models.enums import Role
from models.tables import ApiKey, Practice, utcnow
from runtime.db import session_scope
from runtime.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Admin key or a practice's API key")

KEY_BYTES = 32  # secrets.token_urlsafe(32): 256 bits, so an unsalted sha256 is enough


def new_api_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_temporal(request: Request) -> TemporalConnection:
    temporal: TemporalConnection = request.app.state.temporal
    return temporal


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
TemporalDep = Annotated[TemporalConnection, Depends(get_temporal)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _bearer_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise _unauthorized()
    return credentials.credentials


BearerKey = Annotated[str, Depends(_bearer_key)]


def _is_admin(key: str, settings: Settings) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str (a client could send one).
    return hmac.compare_digest(key.encode("utf-8"), settings.admin_api_key.encode("utf-8"))


# last_used_at is a hint for spotting unused keys, not an audit trail: write it at most this often
# so every request is not also a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _live_key(key: str, session: Session) -> ApiKey | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def _touch(session: Session, row: ApiKey) -> None:
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        session.execute(sa.update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now))
        session.commit()


def _client_ip(request: Request, settings: Settings) -> str | None:
    # X-Forwarded-For is client-controlled unless a proxy we trust overwrites it.
    if settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else None


def client_ip(request: Request, settings: Settings) -> str | None:
    """The caller's IP as the audit log and the rate limits see it."""
    return _client_ip(request, settings)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if given and len(given) <= 64 and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Principal:
    """The caller: role, practice (None for the platform admin), key id, and request origin."""

    role: Role
    practice: Practice | None
    key_id: uuid.UUID | None
    ip: str | None
    request_id: str

    @property
    def practice_id(self) -> uuid.UUID:
        assert self.practice is not None, "admin principals have no practice"
        return self.practice.id


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency: the authenticated caller, if POLICY lets its role do `permission`."""

    def dependency(
        request: Request, key: BearerKey, settings: SettingsDep, session: SessionDep
    ) -> Principal:
        origin = (_client_ip(request, settings), _request_id(request))
        if _is_admin(key, settings):
            principal = Principal(Role.ADMIN, None, None, *origin)
        else:
            row = _live_key(key, session)
            practice = session.get(Practice, row.practice_id) if row is not None else None
            if row is None or practice is None:
                raise _unauthorized()
            _touch(session, row)
            principal = Principal(Role(row.role), practice, row.id, *origin)
        if not allowed(principal.role, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not permitted for this key")
        return principal

    return dependency
