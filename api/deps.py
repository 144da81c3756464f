"""Request dependencies: settings, database session, Temporal connection and authentication.

Auth is `Authorization: Bearer <key>`. The admin key (settings) only creates practices; every
other endpoint takes a practice key, stored as a sha256 hash, and sees only that practice."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.temporal import TemporalConnection
from models.tables import Practice
from runtime.db import session_scope
from runtime.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Admin key or a practice's API key")


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


def _practice_for(key: str, session: Session) -> Practice | None:
    return session.exec(select(Practice).where(Practice.api_key_hash == hash_api_key(key))).first()


def require_admin(key: BearerKey, settings: SettingsDep, session: SessionDep) -> None:
    if _is_admin(key, settings):
        return
    if _practice_for(key, session) is None:
        raise _unauthorized()
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin key required")


def require_practice(key: BearerKey, settings: SettingsDep, session: SessionDep) -> Practice:
    if _is_admin(key, settings):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="use a practice API key")
    practice = _practice_for(key, session)
    if practice is None:
        raise _unauthorized()
    return practice


AdminDep = Annotated[None, Depends(require_admin)]
PracticeDep = Annotated[Practice, Depends(require_practice)]
