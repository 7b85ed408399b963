"""Regenerate the golden bucket configs in ``tests/support/bucket_configs.py``.

For every supported server version: start a throw-away server (the test harness), create each
nats-py recipe with nats-py's own bucket calls and each nats.go body with a raw
``$JS.API.STREAM.CREATE``, read ``$JS.API.STREAM.INFO`` and write the stored configs below the
``CAPTURED`` marker of the data file. Run from the repository root::

    JELMORE_SERVER_CACHE=.cache/nats-server python tests/support/capture_bucket_configs.py

``--versions 2.10.26,2.15.1`` limits the run; the other versions keep their current data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import bucket_configs as data  # noqa: E402
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsServer, binary_for  # noqa: E402

DATA_FILE = Path(data.__file__)
MARKER = "# ---- CAPTURED:"


async def _request(nc: Any, api: str, body: Any = None) -> dict[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    msg = await nc.request(f"$JS.API.{api}", payload, timeout=10)
    return dict(json.loads(msg.data))


async def capture_version(version: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Create every recipe on a fresh server of ``version``; return the stored configs."""
    import nats

    out: dict[str, dict[str, dict[str, Any]]] = {"nats_py": {}, "nats_go": {}}
    with NatsServer(binary=binary_for(version)) as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            for key in data.NATS_PY:
                stream = await data.create_with_nats_py(js, key, version)
                out["nats_py"][key] = (await _request(nc, f"STREAM.INFO.{stream}"))["config"]
            for key in data.NATS_GO:
                body = data.nats_go_request(key, version)
                reply = await _request(nc, f"STREAM.CREATE.{body['name']}", body)
                if "error" in reply:
                    raise RuntimeError(f"{version}: nats.go body {key} refused: {reply['error']}")
                info = await _request(nc, f"STREAM.INFO.{body['name']}")
                out["nats_go"][key] = info["config"]
        finally:
            await nc.close()
    return out


def python_literal(value: Any) -> str:
    """``value`` as a compact Python literal, strings in double quotes (JSON spelling)."""
    if isinstance(value, dict):
        items = (f"{json.dumps(k)}: {python_literal(v)}" for k, v in sorted(value.items()))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def render_golden(golden: dict[str, Any]) -> str:
    """Versions, clients and configs on their own lines; one line per config field."""
    lines = ["{"]
    for version, clients in golden.items():
        lines.append(f'    "{version}": {{')
        for client, configs in sorted(clients.items()):
            lines.append(f'        "{client}": {{')
            for key, config in sorted(configs.items()):
                lines.append(f'            "{key}": {{')
                for field, value in sorted(config.items()):
                    lines.append(f'                "{field}": {python_literal(value)},')
                lines.append("            },")
            lines.append("        },")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


def render(golden: dict[str, Any]) -> str:
    text = render_golden(golden)
    return (
        f"{MARKER} everything below is written by tests/support/capture_bucket_configs.py ----\n"
        f"GOLDEN: dict[str, dict[str, dict[str, dict[str, Any]]]] = {text}\n"
    )


def write(golden: dict[str, Any]) -> None:
    source = DATA_FILE.read_text()
    head, sep, _ = source.partition(MARKER)
    if not sep:
        raise SystemExit(f"{DATA_FILE}: the marker line {MARKER!r} is missing")
    DATA_FILE.write_text(head + render(golden))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(SUPPORTED_VERSIONS))
    args = parser.parse_args(argv)
    golden = dict(data.GOLDEN)
    for version in args.versions.split(","):
        golden[version] = asyncio.run(capture_version(version))
        print(f"captured {version}")
    write({v: golden[v] for v in sorted(golden, key=data.parse_version)})
    print(f"wrote {DATA_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
