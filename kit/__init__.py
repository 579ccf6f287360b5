"""kit: typed handlers over Starlette, validated by msgspec."""

from starlette.background import BackgroundTasks
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from kit import status
from kit.app import App
from kit.di import Depends
from kit.errors import ErrorItem, HTTPException, ValidationFailed
from kit.formats import EmailStr, HttpUrl, Slug, UUIDStr
from kit.forms import File, Form
from kit.middleware.request_id import request_id
from kit.params import Body, Cookie, Header, Path, Query
from kit.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from kit.routing import APIRoute, Router
from kit.settings import Settings

__all__ = [
    "APIRoute",
    "App",
    "BackgroundTasks",
    "Body",
    "Cookie",
    "Depends",
    "EmailStr",
    "ErrorItem",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "HttpUrl",
    "JSONResponse",
    "Path",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "Response",
    "Router",
    "Settings",
    "Slug",
    "StreamingResponse",
    "UUIDStr",
    "UploadFile",
    "ValidationFailed",
    "WebSocket",
    "WebSocketDisconnect",
    "request_id",
    "status",
]

# FastAPI's names for what kit spells differently: importing one says what to write instead.
_INSTEAD = {
    "FastAPI": "kit.App",
    "APIRouter": "kit.Router (Router(prefix=..., tags=..., dependencies=...))",
    "Security": "kit.security.Security",
}


def __getattr__(name: str) -> object:
    if name in _INSTEAD:
        # ImportError, not AttributeError: `from kit import X` keeps this message.
        raise ImportError(f"kit has no {name}: use {_INSTEAD[name]} (docs/fastapi-migration.md)")
    raise AttributeError(f"module 'kit' has no attribute {name!r}")
