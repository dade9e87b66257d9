"""HTTP digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760): the answer
to a trunk's ``401 WWW-Authenticate`` or ``407 Proxy-Authenticate`` challenge.

MD5 (the algorithm every trunk offers), MD5-sess and SHA-256 / SHA-256-sess; ``qop=auth`` when the
challenge offers it (then a client nonce and the nonce count 00000001, as we answer each challenge
once), the RFC 2069 form without qop otherwise. ``auth-int`` alone is refused: nobody asks for it on
an INVITE and it would sign the body, which a proxy may rewrite."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

ALGORITHMS = {"MD5": "md5", "MD5-SESS": "md5", "SHA-256": "sha256", "SHA-256-SESS": "sha256"}
# Preference when a response carries several challenges (RFC 7616 §3.7: the strongest first).
PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")
_PARAMETER = re.compile(r'\s*([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*,?')


class DigestError(ValueError):
    """A challenge we cannot answer (not Digest, no nonce, an algorithm or qop we do not speak)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"  # upper-case
    qop: tuple[str, ...] = ()
    opaque: str = ""


def parse_challenge(value: str) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"not a Digest challenge: {scheme[:20]!r}")
    parameters: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        if not match:
            raise DigestError("unreadable challenge parameters")
        raw = match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        parameters[match.group(1).lower()] = raw
        position = match.end()
    nonce = parameters.get("nonce", "")
    if not nonce:
        raise DigestError("the challenge has no nonce")
    algorithm = parameters.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        raise DigestError(f"unsupported digest algorithm {algorithm[:20]!r}")
    qop = tuple(part.strip().lower() for part in parameters.get("qop", "").split(",") if part.strip())
    if qop and "auth" not in qop:
        raise DigestError("the challenge asks only for qop=auth-int")
    return Challenge(
        realm=parameters.get("realm", ""),
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        opaque=parameters.get("opaque", ""),
    )


def best_challenge(values: list[str]) -> Challenge:
    """The challenge to answer among a response's ``WWW-Authenticate``/``Proxy-Authenticate`` values."""
    usable: list[Challenge] = []
    for value in values:
        try:
            usable.append(parse_challenge(value))
        except DigestError:
            continue
    if not usable:
        raise DigestError("no Digest challenge we can answer")
    return min(usable, key=lambda challenge: PREFERENCE.index(challenge.algorithm))


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(ALGORITHMS[algorithm], text.encode("utf-8")).hexdigest()


def digest_response(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str = "",
    nonce_count: int = 1,
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 when the challenge has no qop)."""
    algorithm = challenge.algorithm
    first = _hash(algorithm, f"{username}:{challenge.realm}:{password}")
    if algorithm.endswith("-SESS"):
        first = _hash(algorithm, f"{first}:{challenge.nonce}:{cnonce}")
    second = _hash(algorithm, f"{method}:{uri}")
    if challenge.qop:
        return _hash(algorithm, f"{first}:{challenge.nonce}:{nonce_count:08x}:{cnonce}:auth:{second}")
    return _hash(algorithm, f"{first}:{challenge.nonce}:{second}")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(
    challenge: Challenge, *, username: str, password: str, method: str, uri: str, cnonce: str = ""
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` header value answering ``challenge``."""
    if challenge.qop or challenge.algorithm.endswith("-SESS"):
        cnonce = cnonce or secrets.token_hex(8)
    response = digest_response(
        challenge, username=username, password=password, method=method, uri=uri, cnonce=cnonce
    )
    parts = [
        f"username={_quoted(username)}",
        f"realm={_quoted(challenge.realm)}",
        f"nonce={_quoted(challenge.nonce)}",
        f"uri={_quoted(uri)}",
        f"response={_quoted(response)}",
        f"algorithm={challenge.algorithm if challenge.algorithm != 'MD5-SESS' else 'MD5-sess'}",
    ]
    if challenge.algorithm == "SHA-256-SESS":
        parts[-1] = "algorithm=SHA-256-sess"
    if cnonce and (challenge.qop or challenge.algorithm.endswith("-SESS")):
        parts.append(f"cnonce={_quoted(cnonce)}")
    if challenge.qop:
        parts.extend(["qop=auth", "nc=00000001"])
    if challenge.opaque:
        parts.append(f"opaque={_quoted(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
