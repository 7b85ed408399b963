"""Encryption of sensitive events: AES-256-GCM on the envelope's ``payload``, keys from
``JELMORE_ENCRYPTION_KEYS``.

**Keys.** ``JELMORE_ENCRYPTION_KEYS`` holds ``KID:BASE64KEY[,KID:BASE64KEY…]`` or the path of a
file holding the same (one or several keys per line, separated by commas; blank lines and lines
starting with ``#`` are ignored). Each key is 32 bytes (AES-256) in standard or URL-safe base64;
a key id is letters, digits, ``.``, ``_`` and ``-`` (at most 64). The first key encrypts, every
key decrypts: to rotate, put the new key first and keep the old ones as long as messages
encrypted under them are kept. A malformed value is a ``KeyConfigError`` naming the variable
(and the position of the bad key), never its value.

**On the wire.** Only ``payload`` changes: it becomes the base64 text of ``nonce || ciphertext``
(a random 12-byte nonce, then AES-GCM's ciphertext with its 16-byte tag) of the payload's compact
JSON. The other envelope fields stay readable for routing and correlation, and the message gets
the header ``Jelmore-Encryption: AES-256-GCM; kid=<kid>``. The associated data (authenticated,
not encrypted) is the JSON array ``[header value, event_type, session_id, message_id]``: a
ciphertext moved to another event, or relabelled with another key id, fails authentication.
``timestamp`` and ``retry_count`` are not bound (a dead-letter replay changes ``retry_count``).
Dead-letter records carry the same three fields and the header, so they decrypt the same way.

**The seam.** Which event types are sensitive is the runtime's setting
``RuntimeSettings.sensitive_event_types`` (``configure(sensitive_event_types=...)`` or
``Runtime(sensitive_event_types=...)``): a set of event type names, or a predicate
``Callable[[str], bool]`` asked for each published event ("is this type sensitive?"), which is
where an event catalogue read from the server plugs in. The publish path calls :func:`protect`
once per event. Decrypting never asks that setting: it keys off the header alone
(:func:`open_event` for consumers and ``replay_events``, :func:`reveal_event` for display).

Publishing a sensitive event without keys is an ``EventError``: it never falls back to plaintext.
A message that cannot be decrypted (unknown key id, failed authentication, malformed ciphertext)
raises ``DecryptError`` (a ``PermanentError``: retrying cannot help) whose text is
``cannot decrypt (key KID)``.

Pure apart from reading a key file and the random nonce. The AES-GCM implementation is the
``cryptography`` package's; it is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.envelope import EventError, OutgoingEvent, encode_json
from jelmore_infra.runtime.retry import PermanentError

ENV_VAR = "JELMORE_ENCRYPTION_KEYS"
HDR_ENCRYPTION = "Jelmore-Encryption"
ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEADER_RE = re.compile(r"\s*AES-256-GCM\s*;\s*kid=([A-Za-z0-9._-]{1,64})\s*")
_URLSAFE = str.maketrans("-_", "+/")


class EncryptionError(JelmoreError):
    """Encryption is misconfigured."""


class KeyConfigError(EncryptionError):
    """The encryption keys (``JELMORE_ENCRYPTION_KEYS``) are malformed or unreadable."""


class DecryptError(PermanentError):
    """An encrypted payload cannot be decrypted with the keys at hand.

    ``str(exc)`` is the failure reason (``cannot decrypt (key KID)``); ``placeholder`` is what
    displays show instead of the payload (``<encrypted: key KID>``).
    """

    def __init__(self, kid: str | None) -> None:
        self.kid = kid
        what = f"key {kid}" if kid is not None else f"unsupported {HDR_ENCRYPTION} header"
        self.placeholder = f"<encrypted: {what}>"
        super().__init__(f"cannot decrypt ({what})")


@dataclass(frozen=True, slots=True, repr=False)
class KeyRing:
    """Encryption keys by id, in order: the first encrypts, all decrypt. Its ``repr`` shows the
    key ids only."""

    entries: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a KeyRing needs at least one key")
        for kid, key in self.entries:
            if not _KID_RE.fullmatch(kid) or len(key) != KEY_BYTES:
                raise ValueError("a KeyRing entry needs a valid key id and a 32-byte key")

    def __repr__(self) -> str:
        return f"KeyRing(kids={list(self.kids)!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self.entries)

    @property
    def primary_kid(self) -> str:
        """The id of the key that encrypts."""
        return self.entries[0][0]

    def key(self, kid: str) -> bytes | None:
        for known, key in self.entries:
            if known == kid:
                return key
        return None


# -- configuration --------------------------------------------------------------------------------


def _decode_key(material: str) -> bytes | None:
    """A key in standard or URL-safe base64 (padding optional); ``None`` when it is not."""
    text = material.translate(_URLSAFE)
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_keys(text: str, *, source: str = ENV_VAR) -> KeyRing:
    """Read ``KID:BASE64KEY`` entries separated by commas or lines (``#`` lines are comments).

    Errors name ``source`` and the position of the bad key (1 for the first), never a value.
    """
    entries = [
        item.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for item in line.split(",")
    ]
    entries = [item for item in entries if item]
    if not entries:
        raise KeyConfigError(f"{source} holds no key (expected KID:BASE64KEY[,KID:BASE64KEY…])")
    ring: list[tuple[str, bytes]] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        kid, sep, material = entry.partition(":")
        kid, material = kid.strip(), material.strip()
        where = f"{source}: key {number}"
        if not sep:
            raise KeyConfigError(f"{where} is not KID:BASE64KEY")
        if not kid:
            raise KeyConfigError(f"{where} has an empty key id")
        if not _KID_RE.fullmatch(kid):
            raise KeyConfigError(
                f"{where} has a key id that is not 1 to 64 letters, digits, '.', '_' or '-'"
            )
        if kid in seen:
            raise KeyConfigError(f"{where} repeats the key id of key {seen[kid]}")
        key = _decode_key(material) if material else None
        if key is None:
            raise KeyConfigError(f"{where} is not valid base64")
        if len(key) != KEY_BYTES:
            raise KeyConfigError(
                f"{where} is {len(key)} bytes long; AES-256 needs {KEY_BYTES} bytes"
            )
        seen[kid] = number
        ring.append((kid, key))
    return KeyRing(tuple(ring))


def load_keys(value: str | None, *, source: str = ENV_VAR) -> KeyRing | None:
    """Keys from a ``JELMORE_ENCRYPTION_KEYS``-style value: inline entries, or the path of a file
    holding them. A value without ``:`` (or naming an existing file) is a path. ``None`` for an
    unset or blank value."""
    text = (value or "").strip()
    if not text:
        return None
    if ":" in text and not os.path.isfile(text):
        return parse_keys(text, source=source)
    try:
        content = Path(text).read_text(encoding="utf-8")
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise KeyConfigError(
            f"{source} is neither KID:BASE64KEY[,KID:BASE64KEY…] nor a readable key file ({why})"
        ) from None
    except UnicodeDecodeError:
        raise KeyConfigError(f"{source} names a key file that is not UTF-8 text") from None
    return parse_keys(content, source=f"{source} (file)")


def keys_from_env(env: Mapping[str, str] | None = None) -> KeyRing | None:
    """The keys of ``JELMORE_ENCRYPTION_KEYS`` (``None`` when unset or blank)."""
    environ = os.environ if env is None else env
    return load_keys(environ.get(ENV_VAR))


# -- payloads -------------------------------------------------------------------------------------


def header_value(kid: str) -> str:
    """``AES-256-GCM; kid=<kid>``."""
    return f"{ALGORITHM}; kid={kid}"


def associated_data(header: str, event_type: Any, session_id: Any, message_id: Any) -> bytes:
    """What a ciphertext is bound to: the header value and the event's identifying fields."""
    fields = [
        header,
        *(v if isinstance(v, str) else "" for v in (event_type, session_id, message_id)),
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _aesgcm(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def encrypt_payload(
    keys: KeyRing, payload: Any, *, event_type: str, session_id: str, message_id: str
) -> tuple[str, str]:
    """``(ciphertext text, header value)`` of ``payload`` under the first key.

    Raises ``EventError`` when the payload is not JSON-serialisable."""
    kid = keys.primary_kid
    key = keys.key(kid)
    assert key is not None
    header = header_value(kid)
    plaintext = encode_json(payload, what=f"{event_type} event payload")
    nonce = os.urandom(NONCE_BYTES)
    aad = associated_data(header, event_type, session_id, message_id)
    sealed = _aesgcm(key).encrypt(nonce, plaintext, aad)
    return base64.b64encode(nonce + sealed).decode("ascii"), header


def header_kid(header: str) -> str | None:
    """The key id of a ``Jelmore-Encryption`` header value; ``None`` when it is not one this
    runtime can decrypt (another algorithm, malformed)."""
    match = _HEADER_RE.fullmatch(header)
    return match.group(1) if match else None


def decrypt_payload(
    keys: KeyRing | None,
    ciphertext: Any,
    header: str,
    *,
    event_type: Any,
    session_id: Any,
    message_id: Any,
) -> Any:
    """The payload ``encrypt_payload`` sealed; ``DecryptError`` when the key is unknown, the
    authentication fails or the ciphertext is malformed."""
    kid = header_kid(header)
    if kid is None:
        raise DecryptError(None)
    key = keys.key(kid) if keys is not None else None
    if key is None or not isinstance(ciphertext, str):
        raise DecryptError(kid)
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError(kid) from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptError(kid)
    from cryptography.exceptions import InvalidTag

    aad = associated_data(header, event_type, session_id, message_id)
    try:
        plaintext = _aesgcm(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptError(kid) from None
    try:
        return json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DecryptError(kid) from None


# -- events ---------------------------------------------------------------------------------------


def encryption_header(headers: Mapping[str, str] | None) -> str | None:
    """The ``Jelmore-Encryption`` header's value (any letter case), or ``None``."""
    if not headers:
        return None
    value = headers.get(HDR_ENCRYPTION)
    if value is not None:
        return value
    wanted = HDR_ENCRYPTION.lower()
    for name, item in headers.items():
        if name.lower() == wanted:
            return item
    return None


def protect(event: OutgoingEvent, *, sensitive: bool, keys: KeyRing | None) -> OutgoingEvent:
    """The event as it must be published: encrypted when ``sensitive``, unchanged otherwise.

    ``EventError`` when a sensitive event has no key (never plaintext instead), or when the
    caller set the ``Jelmore-Encryption`` header (only the runtime sets it)."""
    if encryption_header(event.headers) is not None:
        raise EventError(f"header {HDR_ENCRYPTION} is set by the runtime only")
    if not sensitive:
        return event
    if keys is None:
        raise EventError(
            f"{event.event_type} events are sensitive and no encryption key is configured"
            f" (set {ENV_VAR}): not published"
        )
    envelope = json.loads(event.data)
    ciphertext, header = encrypt_payload(
        keys,
        envelope.get("payload"),
        event_type=event.event_type,
        session_id=event.session_id,
        message_id=event.message_id,
    )
    envelope["payload"] = ciphertext
    data = encode_json(envelope, what=f"{event.event_type} event")
    return replace(event, data=data, headers={**event.headers, HDR_ENCRYPTION: header})


def open_event(
    event: dict[str, Any], headers: Mapping[str, str] | None, keys: KeyRing | None
) -> dict[str, Any]:
    """``event`` (an envelope or a dead-letter record) with its payload decrypted when the
    headers say it is encrypted; the same object otherwise. ``DecryptError`` when it cannot be
    decrypted."""
    header = encryption_header(headers)
    if header is None:
        return event
    payload = decrypt_payload(
        keys,
        event.get("payload"),
        header,
        event_type=event.get("event_type"),
        session_id=event.get("session_id"),
        message_id=event.get("message_id"),
    )
    return {**event, "payload": payload}


def reveal_event(
    event: dict[str, Any], headers: Mapping[str, str] | None, keys: KeyRing | None
) -> dict[str, Any]:
    """For display: ``open_event``, or the event with ``<encrypted: key KID>`` as its payload
    when it cannot be decrypted."""
    try:
        return open_event(event, headers, keys)
    except DecryptError as exc:
        return {**event, "payload": exc.placeholder}
