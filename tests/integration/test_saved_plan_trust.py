"""A saved plan is re-checked against the live server at apply time, and can be signed with
``JELMORE_PLAN_KEY`` (real server, real CLI): an edited file never deletes what jelmore-infra does
not manage, never skips the data-loss gate, and a signed plan is refused once edited."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jelmore_infra.render.json import document_checksum
from tests.support import raw
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer


def _plan(url: str, topology: Path, out: Path, env: dict[str, str] | None = None) -> str:
    made = run_cli("plan", "-s", url, "--topology", str(topology), "-out", str(out), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    return made.stdout + made.stderr


def _forge(planfile: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the plan file as an attacker would, then recompute its plain sha256 checksum."""
    doc = json.loads(planfile.read_text())
    edit(doc)
    doc["checksum"] = document_checksum(doc)
    planfile.write_text(json.dumps(doc, indent=2))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_a_plan_edited_to_delete_an_unmanaged_stream_is_refused_and_the_stream_stays(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    raw.create_stream(url, {"name": "LEGACY", "subjects": ["legacy.>"]})
    raw.publish(url, "legacy.x", 3)
    topo = copy_topology(tmp_path)
    planfile = tmp_path / "plan.json"
    _plan(url, topo, planfile)

    def delete_legacy(doc: dict[str, Any]) -> None:
        recorded = doc["fingerprints"]["stream.LEGACY"]
        assert recorded is not None
        doc["changes"].insert(
            0,
            {
                "address": "stream.LEGACY",
                "kind": "stream",
                "stream": "LEGACY",
                "name": "LEGACY",
                "action": "delete",
                "before": {"name": "LEGACY", "subjects": ["legacy.>"]},
                "after": None,
                "fields": [],
                "replace_reasons": [],
                "fingerprint": recorded,
            },
        )
        doc["summary"]["destroy"] += 1
        doc["warnings"] = [w for w in doc["warnings"] if w["address"] != "stream.LEGACY"]
        doc["unmanaged"] = []

    _forge(planfile, delete_legacy)
    proc = run_cli(
        "apply", "-s", url, str(planfile), "--allow-destroy", "--allow-data-loss", "--auto-approve"
    )
    assert_clean_error(proc)
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert "stream.LEGACY" in errors[0] and "not managed by jelmore-infra" in errors[0]
    assert "LEGACY" in raw.stream_names(url)
    assert raw.stream_state(url, "LEGACY")["messages"] == 3
    assert "JELMORE" not in raw.stream_names(url)  # refused before anything was sent


def test_a_plan_edited_to_drop_its_data_loss_warning_still_needs_allow_data_loss(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    topo = copy_topology(tmp_path)
    done = run_cli("apply", "-s", url, "--topology", str(topo), "--auto-approve")
    assert done.returncode == 0, done.stderr
    raw.publish(url, "jelmore.session.created", 20)
    text = (topo / "streams.yaml").read_text().replace("max_msgs: 100000", "max_msgs: 5", 1)
    (topo / "streams.yaml").write_text(text)
    planfile = tmp_path / "plan.json"
    _plan(url, topo, planfile)
    assert any(w["kind"] == "data-loss" for w in json.loads(planfile.read_text())["warnings"])

    def drop_data_loss(doc: dict[str, Any]) -> None:
        doc["warnings"] = [w for w in doc["warnings"] if w["kind"] != "data-loss"]

    _forge(planfile, drop_data_loss)
    refused = run_cli("apply", "-s", url, str(planfile))
    assert_clean_error(refused)
    assert "--allow-data-loss" in refused.stderr
    assert "about 15 of 20 stored messages" in refused.stderr  # computed from the live state
    assert raw.stream_state(url, "JELMORE")["messages"] == 20
    allowed = run_cli("apply", "-s", url, str(planfile), "--allow-data-loss")
    assert allowed.returncode == 0, allowed.stderr
    assert raw.stream_state(url, "JELMORE")["messages"] == 5


KEY_A = "key-A-d0n0t-print-me"
KEY_B = "key-B-d0n0t-print-me"


def test_a_plan_signed_with_jelmore_plan_key_applies_only_unedited_and_with_that_key(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    topo = copy_topology(tmp_path)
    signed = tmp_path / "signed.json"
    output = _plan(url, topo, signed, env={"JELMORE_PLAN_KEY": KEY_A})
    text = signed.read_text()
    assert json.loads(text)["checksum"].startswith("hmac-sha256:")
    assert KEY_A not in text and KEY_A not in output

    def apply(planfile: Path, key: str | None) -> Any:
        env = {"JELMORE_PLAN_KEY": key} if key else {"JELMORE_PLAN_KEY": ""}
        return run_cli("apply", "-s", url, str(planfile), env=env)

    def refused(planfile: Path, key: str | None, message: str) -> None:
        proc = apply(planfile, key)
        assert_clean_error(proc)
        assert message in proc.stderr
        assert KEY_A not in proc.stdout + proc.stderr
        assert "JELMORE" not in raw.stream_names(url)

    # Signed with key A, applied with key B.
    refused(signed, KEY_B, "plan signature does not match JELMORE_PLAN_KEY")
    # Signed, applied without any key.
    refused(signed, None, "plan is signed: set JELMORE_PLAN_KEY")
    # Edited and re-checksummed with plain sha256, as anyone can.
    forged = tmp_path / "forged.json"
    forged.write_text(text)
    _forge(forged, lambda doc: doc["changes"][0]["after"].update(description="forged"))
    refused(forged, KEY_A, "plan is not signed with JELMORE_PLAN_KEY")
    # Edited, signature kept.
    kept = json.loads(text)
    kept["changes"][0]["after"]["description"] = "forged"
    forged.write_text(json.dumps(kept, indent=2))
    refused(forged, KEY_A, "plan signature does not match JELMORE_PLAN_KEY")
    # Saved without a key, applied while a key is set.
    unsigned = tmp_path / "unsigned.json"
    _plan(url, topo, unsigned)
    refused(unsigned, KEY_A, "plan is not signed with JELMORE_PLAN_KEY")
    # The untouched signed plan, with its key.
    done = apply(signed, KEY_A)
    assert done.returncode == 0, done.stderr
    assert "Apply complete!" in done.stdout
    assert KEY_A not in done.stdout + done.stderr
    assert "JELMORE" in raw.stream_names(url)
