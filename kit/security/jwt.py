"""JWT verification, safe by default, on PyJWT.

An explicit allow-list of algorithms (never ``none``); each algorithm is checked only with a
key of its own family, so a token cannot pick HS256 to have a public key used as an HMAC
secret. ``exp`` is required; ``exp``/``nbf``/``iat`` are checked with a small leeway; ``aud``
and ``iss`` when configured. A verified token is remembered (bounded LRU, never past its
``exp`` nor ``CACHE_TTL``), so a client that reuses its token pays for one verification;
``JWTBearer`` remembers it under the Authorization header's bytes, so that a request whose
header it has seen verified costs one dictionary lookup and a clock read.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from jwt.types import Options

    from kit.security.jwks import JWKS

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
MAX_TOKEN_LENGTH = 8192  # longer is refused before any parsing
CACHE_SIZE = 4096
CACHE_TTL = 60.0  # seconds: a key removed from a JWKS stops admitting cached tokens by then


class InvalidToken(Exception):
    """The token does not verify; the message is safe to show the client."""


class Claims(dict[str, Any]):
    """A verified token's claims; ``scopes`` from ``scope`` (space-separated) or ``scp``."""

    scopes: frozenset[str]

    def __init__(self, payload: dict[str, Any]) -> None:
        dict.__init__(self, payload)
        raw = payload.get("scope", payload.get("scp", ()))
        if isinstance(raw, str):
            raw = raw.split()
        self.scopes = (
            frozenset(s for s in raw if isinstance(s, str))
            if isinstance(raw, (list, tuple))
            else frozenset()
        )

    @property
    def subject(self) -> str | None:
        sub = self.get("sub")
        return sub if isinstance(sub, str) else None

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        # one verified token's claims are shared by every request that sends it (the cache)
        raise TypeError("Claims are read-only; copy them with dict(claims) to change them")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only
    __ior__ = _read_only


def public_key_algorithms(pem: str) -> tuple[str, ...]:
    """The algorithm a PEM public key is used with (RS256 for RSA, ES* by curve, EdDSA)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        raise ValueError(
            "a public key needs the cryptography package: pip install 'kit-asgi[jwt-keys]'"
        ) from None
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise ValueError("KIT_AUTH_JWT_PUBLIC_KEY is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256",)
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name in by_curve:
            return (by_curve[key.curve.name],)
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return ("EdDSA",)
    raise ValueError("KIT_AUTH_JWT_PUBLIC_KEY is a key type JWTs are not signed with")


class JWTVerifier:
    """Verifies tokens with one of: a shared ``secret`` (HS*), a PEM ``public_key``, a ``jwks``.

    ``algorithms`` defaults to the algorithms of the key given. A secret and a public key may
    both be set: HS* tokens are then checked with the secret only, the others with the key only.
    """

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        public_key: str | None = None,
        jwks: JWKS | None = None,
        algorithms: Sequence[str] = (),
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 10.0,
        require: Sequence[str] = ("exp",),
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if public_key is not None and jwks is not None:
            raise ValueError("give a public key or a JWKS URL, not both")
        if secret is None and public_key is None and jwks is None:
            raise ValueError("JWT verification needs a secret, a public key or a JWKS URL")
        if isinstance(secret, str):
            secret = secret.encode()
        if secret is not None and len(secret) < 32:
            raise ValueError("KIT_AUTH_JWT_SECRET must be at least 32 bytes (RFC 7518 3.2)")
        if not algorithms:
            defaults: list[str] = []
            if secret is not None:
                defaults.append("HS256")
            if public_key is not None:
                defaults += public_key_algorithms(public_key)
            if jwks is not None:
                defaults += ["RS256", "ES256"]
            algorithms = defaults
        elif public_key is not None:
            public_key_algorithms(public_key)  # a clear error for a bad key, not a 401 later
        for alg in algorithms:
            if alg not in jwt.algorithms.get_default_algorithms() or alg.lower() == "none":
                raise ValueError(f"JWT algorithm {alg!r} is not available")
            if alg in HMAC_ALGORITHMS and secret is None:
                raise ValueError(f"{alg} needs KIT_AUTH_JWT_SECRET")
            if alg not in HMAC_ALGORITHMS and public_key is None and jwks is None:
                raise ValueError(f"{alg} needs KIT_AUTH_JWT_PUBLIC_KEY or KIT_AUTH_JWKS_URL")
        self.algorithms = frozenset(algorithms)
        self.secret = secret
        self.public_key = public_key
        self.jwks = jwks
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.require = list(require)
        self.options: Options = {"require": self.require, "verify_aud": audience is not None}
        self.cache_size = cache_size
        # verified claims and until when they may be used (their exp, at most CACHE_TTL from
        # when they were verified), keyed by the token or by what it came in (cache_key)
        self.cache: OrderedDict[str | bytes, tuple[Claims, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def verify(self, token: str, cache_key: str | bytes | None = None) -> Claims:
        """The token's claims, or ``InvalidToken`` saying why not; remembered under
        ``cache_key`` (what the token was read from, when that maps to one token) or the
        token."""
        hit = self._cached(token if cache_key is None else cache_key)
        if hit is not None:
            return hit
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.InvalidTokenError, ValueError, TypeError, RecursionError):
            # DecodeError, a "kid" that is not a string, a "crit" header: anything the
            # sender wrote badly is a 401, never a 500
            raise InvalidToken("token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("token algorithm is not accepted")
        if alg in HMAC_ALGORITHMS:
            key: Any = self.secret
        elif self.jwks is not None:
            key = await self.jwks.key_for(header.get("kid"), alg)
        else:
            key = self.public_key
        claims = self._decode(token, key, alg)
        self._remember(token if cache_key is None else cache_key, claims)
        return claims

    def _decode(self, token: str, key: Any, alg: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=self.options,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token issuer is not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("token signature does not verify") from None
        except (jwt.InvalidTokenError, jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise InvalidToken("token is invalid") from None
        return Claims(payload)

    def _cached(self, key: str | bytes) -> Claims | None:
        entry = self.cache.get(key)
        if entry is None:
            return None
        claims, until = entry
        if time.time() >= until:
            with self._lock:
                self.cache.pop(key, None)
            return None
        try:
            self.cache.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread
            pass
        return claims

    def _remember(self, key: str | bytes, claims: Claims) -> None:
        exp = claims.get("exp")
        until = time.time() + CACHE_TTL
        if isinstance(exp, (int, float)):
            until = min(until, float(exp))
        elif "exp" in self.require:  # pragma: no cover - decode refused it already
            return
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > time.time():
            return  # valid only thanks to the leeway: not worth remembering
        with self._lock:
            self.cache[key] = (claims, until)
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
