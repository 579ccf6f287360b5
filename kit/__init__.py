"""kit: typed handlers over Starlette, validated by msgspec."""

from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from kit.app import App
from kit.di import Depends
from kit.errors import ErrorItem, HTTPException, ValidationFailed
from kit.formats import EmailStr, HttpUrl, Slug, UUIDStr
from kit.middleware.request_id import request_id
from kit.params import Body, Cookie, Header, Path, Query
from kit.responses import JSONResponse
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
    "HTMLResponse",
    "HTTPException",
    "Header",
    "HttpUrl",
    "JSONResponse",
    "Path",
    "PlainTextResponse",
    "Query",
    "Request",
    "Response",
    "Router",
    "Settings",
    "Slug",
    "StreamingResponse",
    "UUIDStr",
    "ValidationFailed",
    "request_id",
]
