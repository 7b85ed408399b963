"""Exception hierarchy of jelmore-infra. Imports nothing internal.

JelmoreError                 every error the CLI turns into one line and exit code 1
├── TopologyError            topology files are invalid (carries diagnostics with file:line:col)
├── ConnectionFailed         nothing listening, auth failure, JetStream disabled, timeout
├── JetStreamAPIError        the server answered a management request with an error
├── TransportError           a request over an open connection was not completed
│   ├── TransportTimeout     no answer in time (the request may still have been carried out)
│   └── NoResponders         nobody answered (JetStream or the stream is not available now)
├── StalePlanError           a saved plan no longer matches the live server
├── PlanFileError            a saved plan file is corrupt or hand-edited
├── ApplyError               apply stopped part-way (carries what was and was not done)
├── LockError                another apply holds the lock
└── LocalServerError         the local nats-server could not be started
"""

from __future__ import annotations

from typing import Any

#: JetStream error codes (``err_code`` of an error reply) the package branches on.
ERR_CONSUMER_NOT_FOUND = 10014
ERR_MESSAGE_NOT_FOUND = 10037
ERR_JS_NOT_ENABLED_FOR_ACCOUNT = 10039
ERR_STREAM_NAME_IN_USE = 10058
ERR_STREAM_NOT_FOUND = 10059
ERR_WRONG_LAST_SEQUENCE = 10071
ERR_JS_NOT_ENABLED = 10076
ERR_CONSUMER_ALREADY_EXISTS = 10148
ERR_CONSUMER_DOES_NOT_EXIST = 10149
ERR_PEDANTIC = 10157


class JelmoreError(Exception):
    """Base of every error jelmore-infra reports to users as one clear line."""


class TopologyError(JelmoreError):
    """The topology files are invalid. ``diagnostics`` holds every problem found."""

    def __init__(self, diagnostics: Any) -> None:
        self.diagnostics = diagnostics
        count = len(diagnostics)
        super().__init__(f"topology is invalid: {count} error{'s' if count != 1 else ''}")


class ConnectionFailed(JelmoreError):
    """The server could not be reached or refused us."""


class NoStreamAnswers(ConnectionFailed):
    """A JetStream publish got no answer at all: no stream stores the subject, or the stream
    that does has no leader yet (just created on a cluster)."""


class JetStreamAPIError(JelmoreError):
    """A ``$JS.API`` request returned an error envelope."""

    def __init__(self, subject: str, code: int, err_code: int, description: str) -> None:
        self.subject = subject
        self.code = code
        self.err_code = err_code
        self.description = description
        super().__init__(f"{description} (JetStream error {err_code}, {subject})")


class TransportError(JelmoreError):
    """A request over an open connection could not be completed (no nats error leaves the
    transport: this is what callers see)."""


class TransportTimeout(TransportError):
    """No answer within the timeout (the request may still have been carried out)."""


class NoResponders(TransportError):
    """Nobody answered: JetStream, or the stream, is not available right now."""


class StalePlanError(JelmoreError):
    """A saved plan was made against a different live state than the server has now."""


class PlanFileError(JelmoreError):
    """A saved plan file cannot be read."""


class ApplyError(JelmoreError):
    """Apply stopped part-way."""


class LockError(JelmoreError):
    """Another apply holds the lock."""


class LocalServerError(JelmoreError):
    """The local nats-server could not be started."""
