"""Authentication as dependencies: ``Security(scheme, scopes=[...])``, documented in OpenAPI."""

from kit.security.api_key import APIKeyCookie, APIKeyHeader, APIKeyQuery
from kit.security.base import Forbidden, SecurityScheme, Unauthorized
from kit.security.http import HTTPBasic, HTTPBasicCredentials, HTTPBearer, JWTBearer
from kit.security.jwks import JWKS, JWKSUnavailable
from kit.security.jwt import Claims, InvalidToken, JWTVerifier
from kit.security.keys import APIKeys, hash_key, parse_key_entry
from kit.security.oauth2 import OAuth2ClientCredentials, OAuth2PasswordBearer
from kit.security.scopes import Requirement, Security
from kit.security.startup import Authentication, SecurityStartupError

__all__ = [
    "JWKS",
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "APIKeys",
    "Authentication",
    "Claims",
    "Forbidden",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "InvalidToken",
    "JWKSUnavailable",
    "JWTBearer",
    "JWTVerifier",
    "OAuth2ClientCredentials",
    "OAuth2PasswordBearer",
    "Requirement",
    "Security",
    "SecurityScheme",
    "SecurityStartupError",
    "Unauthorized",
    "hash_key",
    "parse_key_entry",
]
