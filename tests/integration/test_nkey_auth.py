"""NKey authentication: ``--nkey SEEDFILE`` against a server that only admits that nkey user."""

from __future__ import annotations

import os
from pathlib import Path

import nkeys

from tests.support.cli import run_cli
from tests.support.natsserver import NatsServer


def _user_seed() -> tuple[str, str]:
    """A fresh user nkey: (seed, public key)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    return seed, public


def test_plan_authenticates_with_an_nkey_seed_and_never_prints_it(tmp_path: Path) -> None:
    seed, public = _user_seed()
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(seed + "\n")
    topology = tmp_path / "topology"
    topology.mkdir()
    (topology / "t.yaml").write_text("streams:\n  S:\n    subjects: [s.>]\n")
    with NatsServer(config=f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}') as server:
        ok = run_cli(
            "plan", "-s", server.url, "--nkey", str(seed_file), "--topology", str(topology)
        )
        assert ok.returncode == 0, ok.stderr
        assert "Plan: 1 to add" in ok.stdout
        assert seed not in ok.stdout + ok.stderr
        other_seed, _ = _user_seed()
        wrong = tmp_path / "other.nk"
        wrong.write_text(other_seed + "\n")
        refused = run_cli(
            "plan", "-s", server.url, "--nkey", str(wrong), "--topology", str(topology)
        )
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert "authoriz" in refused.stderr.lower()
        assert other_seed not in refused.stderr
