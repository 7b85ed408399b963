"""The official AsyncAPI 3.0.0 JSON Schema, fetched once from npm and checked, for the tests.

    python tests/support/asyncapi_schema.py [--cache DIR]

The schema is the file ``schemas/3.0.0-without-$id.json`` of the npm package ``@asyncapi/specs``
6.11.1 (the form meant for validators that work offline). It is never committed: ``make test``
runs this script (the Makefile's ``asyncapi-schema`` target), which downloads the package
tarball from the npm registry with urllib, checks it against the ``sha512`` integrity the
registry publishes for that version (pinned below), and extracts the one file into
``DIR/3.0.0-without-$id.json`` (default ``.cache/asyncapi``; ``JELMORE_ASYNCAPI_CACHE`` tells
the tests where it is). Running it again when the file is there costs nothing.

:func:`load_schema` reads the cached file and checks its ``sha256``; a missing or altered file
raises, so the tests that need it fail rather than skip.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE = "@asyncapi/specs"
VERSION = "6.11.1"
TARBALL_URL = "https://registry.npmjs.org/@asyncapi/specs/-/specs-6.11.1.tgz"
#: ``dist.integrity`` of @asyncapi/specs 6.11.1 in the npm registry's metadata.
TARBALL_INTEGRITY = "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
MEMBER = "package/schemas/3.0.0-without-$id.json"
FILE_NAME = "3.0.0-without-$id.json"
#: sha256 of that member, so a cached copy that was changed afterwards is noticed.
FILE_SHA256 = "abe96881dbfaad495ccbb6bd8d3fb43ca18a13b9d7564849ccb66f39d5e5b20f"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "asyncapi"
CACHE_ENV = "JELMORE_ASYNCAPI_CACHE"
DOWNLOAD_TIMEOUT = 120


class SchemaUnavailable(RuntimeError):
    """The schema is not in the cache, or the cached copy is not the pinned file."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def schema_path(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / FILE_NAME


def integrity_matches(data: bytes, integrity: str = TARBALL_INTEGRITY) -> bool:
    """Whether ``data`` has the npm ``sha512-<base64>`` integrity value."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity algorithm {algorithm!r}")
    return base64.b64encode(hashlib.sha512(data).digest()).decode() == expected


def extract_schema(tarball: bytes) -> bytes:
    """The schema file out of the package tarball, checked against :data:`FILE_SHA256`."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.getmember(MEMBER)
        handle = archive.extractfile(member)
        if handle is None:
            raise SchemaUnavailable(f"{MEMBER} in {TARBALL_URL} is not a regular file")
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != FILE_SHA256:
        raise SchemaUnavailable(f"{MEMBER} in {TARBALL_URL} does not have the pinned sha256")
    return data


def fetch(cache: Path | None = None) -> Path:
    """Download, verify and cache the schema (nothing to do when the cached copy is right)."""
    target = schema_path(cache)
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == FILE_SHA256:
        return target
    with urllib.request.urlopen(TARBALL_URL, timeout=DOWNLOAD_TIMEOUT) as response:
        tarball = response.read()
    if not integrity_matches(tarball):
        raise SchemaUnavailable(
            f"{TARBALL_URL} does not match the pinned integrity of {PACKAGE} {VERSION}"
        )
    data = extract_schema(tarball)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".schema-", suffix=".partial")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(partial, 0o644)
    os.replace(partial, target)
    return target


def load_schema(cache: Path | None = None) -> dict[str, Any]:
    """The cached schema as a dict; raises :class:`SchemaUnavailable` when it is missing or was
    altered (run ``make asyncapi-schema`` or this script first)."""
    path = schema_path(cache)
    hint = "run `make asyncapi-schema` (python tests/support/asyncapi_schema.py) first"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaUnavailable(f"the AsyncAPI 3.0.0 schema is not at {path}: {hint}") from None
    if hashlib.sha256(data).hexdigest() != FILE_SHA256:
        raise SchemaUnavailable(f"{path} is not the pinned AsyncAPI 3.0.0 schema: {hint}")
    schema: dict[str, Any] = json.loads(data)
    return schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    try:
        path = fetch(args.cache)
    except (OSError, SchemaUnavailable, tarfile.TarError, KeyError) as exc:
        print(f"error: cannot fetch the AsyncAPI schema: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"AsyncAPI 3.0.0 schema ({PACKAGE} {VERSION}): {path}")


if __name__ == "__main__":
    main()
