"""Encryption of sensitive events (``runtime.crypto``) without a server: key parsing and its
errors, AES-256-GCM sealing and opening, what the ciphertext is bound to, rotation, the publish
seam (``protect`` via ``new_event``), dead-letter records, and the CLI's error for a malformed
``JELMORE_ENCRYPTION_KEYS``."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jelmore_infra.runtime import Runtime
from jelmore_infra.runtime.crypto import (
    ENV_VAR,
    HDR_ENCRYPTION,
    DecryptError,
    KeyConfigError,
    KeyRing,
    decrypt_payload,
    encrypt_payload,
    load_keys,
    open_event,
    parse_keys,
    protect,
    reveal_event,
)
from jelmore_infra.runtime.dlq import build_dead_letter, replay_from_dead_letter
from jelmore_infra.runtime.envelope import EventError, build_event, decode_event
from jelmore_infra.runtime.retry import Action, PermanentError, decide
from jelmore_infra.runtime.settings import SettingsError, from_env
from tests.support.cli import run_cli

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.b64encode(KEY_B).decode()
NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
SECRET = {"api_token": "hunter2-very-secret", "n": 1}


def ring(text: str) -> KeyRing:
    return parse_keys(text)


def fields(mid: str = "m1", sid: str = "s1", etype: str = "session.output") -> dict[str, str]:
    return {"event_type": etype, "session_id": sid, "message_id": mid}


# -- keys -----------------------------------------------------------------------------------------


def test_keys_are_kid_colon_base64_separated_by_commas_and_the_first_encrypts() -> None:
    keys = ring(f" b:{B64_B} , a:{B64_A} ")
    assert keys.kids == ("b", "a")
    assert keys.primary_kid == "b"
    assert keys.key("a") == KEY_A
    assert keys.key("nope") is None


def test_keys_accept_url_safe_base64_without_padding() -> None:
    key = b"\xfb\xff" * 16  # encodes with '+' and '/' in standard base64
    text = base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert ring(f"k.1_x-y:{text}").key("k.1_x-y") == key


def test_a_key_file_holds_keys_on_lines_or_commas_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2024-06\nnew:{B64_B}\n\nold:{B64_A},\n")
    keys = load_keys(str(path))
    assert keys is not None
    assert keys.kids == ("new", "old")


def test_an_unset_or_blank_value_means_no_keys() -> None:
    assert load_keys(None) is None
    assert load_keys("   ") is None
    assert from_env({}).encryption_keys is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a:not*base64", "JELMORE_ENCRYPTION_KEYS: key 1 is not valid base64"),
        (f"a:{B64_A},b:", "JELMORE_ENCRYPTION_KEYS: key 2 is not valid base64"),
        (
            f"a:{base64.b64encode(b'x' * 16).decode()}",
            "JELMORE_ENCRYPTION_KEYS: key 1 is 16 bytes long; AES-256 needs 32 bytes",
        ),
        (f":{B64_A}", "JELMORE_ENCRYPTION_KEYS: key 1 has an empty key id"),
        (
            f"a b:{B64_A}",
            "JELMORE_ENCRYPTION_KEYS: key 1 has a key id that is not 1 to 64 letters, digits,"
            " '.', '_' or '-'",
        ),
        (
            f"a:{B64_A},a:{B64_B}",
            "JELMORE_ENCRYPTION_KEYS: key 2 repeats the key id of key 1",
        ),
        (  # a key pasted where the id goes is not echoed either
            f"a:{B64_A},{B64_B}:{B64_A}",
            "JELMORE_ENCRYPTION_KEYS: key 2 has a key id that is not 1 to 64 letters, digits,"
            " '.', '_' or '-'",
        ),
    ],
)
def test_a_malformed_key_is_one_line_naming_the_variable_never_the_value(
    value: str, message: str
) -> None:
    with pytest.raises(KeyConfigError) as caught:
        from_env({ENV_VAR: value})
    text = str(caught.value)
    assert text == message
    assert "\n" not in text
    for part in value.replace(",", ":").split(":"):
        if len(part.strip()) > 3:
            assert part.strip() not in text


def test_an_entry_without_a_colon_is_refused_without_showing_it() -> None:
    with pytest.raises(KeyConfigError) as caught:
        parse_keys(f"a:{B64_A}\n{B64_B}")
    assert str(caught.value) == "JELMORE_ENCRYPTION_KEYS: key 2 is not KID:BASE64KEY"


def test_an_unreadable_key_file_is_an_error_without_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "secret-keys-file"
    with pytest.raises(KeyConfigError) as caught:
        from_env({ENV_VAR: str(missing)})
    assert str(caught.value) == (
        "JELMORE_ENCRYPTION_KEYS is neither KID:BASE64KEY[,KID:BASE64KEY…] nor a readable key"
        " file (No such file or directory)"
    )
    with pytest.raises(KeyConfigError, match="readable key file"):
        from_env({ENV_VAR: str(tmp_path)})  # a directory
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(KeyConfigError) as caught:
        from_env({ENV_VAR: str(binary)})
    assert str(caught.value) == "JELMORE_ENCRYPTION_KEYS names a key file that is not UTF-8 text"
    assert str(tmp_path) not in str(caught.value)


def test_a_malformed_key_in_a_file_names_the_variable_and_the_position(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"a:{B64_A}\nb:short\n")
    with pytest.raises(KeyConfigError) as caught:
        from_env({ENV_VAR: str(path)})
    assert str(caught.value) == "JELMORE_ENCRYPTION_KEYS (file): key 2 is not valid base64"
    path.write_text("# no keys yet\n , \n")
    with pytest.raises(KeyConfigError) as caught:
        from_env({ENV_VAR: str(path)})
    assert str(caught.value) == (
        "JELMORE_ENCRYPTION_KEYS (file) holds no key (expected KID:BASE64KEY[,KID:BASE64KEY…])"
    )


def test_keys_never_appear_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, f"a:{B64_A}")
    runtime = Runtime(url="nats://127.0.0.1:4222")
    assert runtime.settings.encryption_keys is not None
    for text in (repr(runtime.settings), repr(runtime.settings.encryption_keys), repr(runtime)):
        assert B64_A not in text
        assert repr(KEY_A) not in text
    assert repr(runtime.settings.encryption_keys) == "KeyRing(kids=['a'])"


def test_a_runtime_refuses_malformed_keys_from_the_environment_at_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, "a:AAAA")
    with pytest.raises(KeyConfigError, match=r"^JELMORE_ENCRYPTION_KEYS: key 1 is 3 bytes long"):
        Runtime(url="nats://127.0.0.1:4222")
    # explicit keys win over the variable, and name the argument they came from
    assert Runtime(encryption_keys=f"a:{B64_A}").settings.encryption_keys is not None
    with pytest.raises(KeyConfigError, match=r"^encryption_keys: key 1 is not valid base64$"):
        Runtime(encryption_keys="a:!!")


# -- sealing and opening --------------------------------------------------------------------------


def test_a_payload_round_trips_and_its_ciphertext_does_not_contain_it() -> None:
    keys = ring(f"a:{B64_A}")
    ciphertext, header = encrypt_payload(keys, SECRET, **fields())
    assert header == "AES-256-GCM; kid=a"
    assert "hunter2" not in ciphertext
    raw = base64.b64decode(ciphertext)
    assert len(raw) == 12 + len(json.dumps(SECRET, separators=(",", ":"))) + 16
    assert decrypt_payload(keys, ciphertext, header, **fields()) == SECRET


def test_each_encryption_uses_a_fresh_nonce() -> None:
    keys = ring(f"a:{B64_A}")
    first, _ = encrypt_payload(keys, SECRET, **fields())
    second, _ = encrypt_payload(keys, SECRET, **fields())
    assert first != second
    assert base64.b64decode(first)[:12] != base64.b64decode(second)[:12]


@pytest.mark.parametrize(
    "moved",
    [
        {"message_id": "m2"},
        {"session_id": "s2"},
        {"event_type": "session.status"},
    ],
    ids=["other-message", "other-session", "other-type"],
)
def test_a_ciphertext_moved_to_another_event_does_not_decrypt(moved: dict[str, str]) -> None:
    keys = ring(f"a:{B64_A}")
    ciphertext, header = encrypt_payload(keys, SECRET, **fields())
    with pytest.raises(DecryptError) as caught:
        decrypt_payload(keys, ciphertext, header, **{**fields(), **moved})
    assert str(caught.value) == "cannot decrypt (key a)"


def test_a_header_relabelled_with_another_key_id_does_not_decrypt() -> None:
    keys = ring(f"a:{B64_A},b:{B64_A}")  # the same key material under two ids
    ciphertext, _ = encrypt_payload(keys, SECRET, **fields())
    with pytest.raises(DecryptError, match=r"^cannot decrypt \(key b\)$"):
        decrypt_payload(keys, ciphertext, "AES-256-GCM; kid=b", **fields())


def test_an_unknown_key_id_a_wrong_key_and_tampering_are_decrypt_errors() -> None:
    ciphertext, header = encrypt_payload(ring(f"a:{B64_A}"), SECRET, **fields())
    with pytest.raises(DecryptError, match=r"^cannot decrypt \(key a\)$"):
        decrypt_payload(ring(f"b:{B64_B}"), ciphertext, header, **fields())  # unknown id
    with pytest.raises(DecryptError, match=r"^cannot decrypt \(key a\)$"):
        decrypt_payload(ring(f"a:{B64_B}"), ciphertext, header, **fields())  # wrong key
    with pytest.raises(DecryptError, match=r"^cannot decrypt \(key a\)$"):
        decrypt_payload(None, ciphertext, header, **fields())  # no keys at all
    raw = bytearray(base64.b64decode(ciphertext))
    raw[20] ^= 1
    tampered = base64.b64encode(bytes(raw)).decode()
    for bad in (tampered, ciphertext[:20], "not base64!", {"plain": 1}, None):
        with pytest.raises(DecryptError, match=r"^cannot decrypt \(key a\)$"):
            decrypt_payload(ring(f"a:{B64_A}"), bad, header, **fields())


def test_an_unsupported_header_is_a_decrypt_error_with_its_own_placeholder() -> None:
    with pytest.raises(DecryptError) as caught:
        decrypt_payload(ring(f"a:{B64_A}"), "x", "ChaCha20; kid=a", **fields())
    assert str(caught.value) == "cannot decrypt (unsupported Jelmore-Encryption header)"
    assert caught.value.placeholder == "<encrypted: unsupported Jelmore-Encryption header>"


def test_rotation_new_key_first_encrypts_with_it_and_still_decrypts_the_old_key() -> None:
    old = ring(f"a:{B64_A}")
    rotated = ring(f"b:{B64_B},a:{B64_A}")
    old_ciphertext, old_header = encrypt_payload(old, SECRET, **fields())
    new_ciphertext, new_header = encrypt_payload(rotated, SECRET, **fields())
    assert new_header == "AES-256-GCM; kid=b"
    assert decrypt_payload(rotated, old_ciphertext, old_header, **fields()) == SECRET
    assert decrypt_payload(rotated, new_ciphertext, new_header, **fields()) == SECRET
    with pytest.raises(DecryptError, match=r"key b"):
        decrypt_payload(old, new_ciphertext, new_header, **fields())


def test_a_decrypt_error_is_permanent_so_it_is_dead_lettered_on_the_first_attempt() -> None:
    error = DecryptError("a")
    assert isinstance(error, PermanentError)
    assert decide(1, 3, (2.0, 4.0), error).action is Action.DEAD_LETTER


# -- events ---------------------------------------------------------------------------------------


def sealed_event(keys: KeyRing) -> tuple[dict[str, object], dict[str, str]]:
    plain = build_event(
        "jelmore.session.output", "session.output", "s1", SECRET, now=NOW, message_id="m1"
    )
    event = protect(plain, sensitive=True, keys=keys)
    return decode_event(event.data), event.headers


def test_protect_leaves_other_fields_readable_and_adds_the_header() -> None:
    envelope, headers = sealed_event(ring(f"a:{B64_A}"))
    assert headers[HDR_ENCRYPTION] == "AES-256-GCM; kid=a"
    assert headers["Nats-Msg-Id"] == "m1"
    assert {k: envelope[k] for k in ("event_type", "session_id", "message_id", "retry_count")} == {
        "event_type": "session.output",
        "session_id": "s1",
        "message_id": "m1",
        "retry_count": 0,
    }
    assert envelope["timestamp"] == "2024-01-01T12:00:00.000Z"
    assert isinstance(envelope["payload"], str)
    assert "hunter2" not in json.dumps(envelope)
    assert open_event(envelope, headers, ring(f"a:{B64_A}"))["payload"] == SECRET


def test_protect_leaves_an_event_that_is_not_sensitive_untouched() -> None:
    plain = build_event("jelmore.session.output", "session.output", "s1", SECRET, now=NOW)
    assert protect(plain, sensitive=False, keys=ring(f"a:{B64_A}")) is plain
    assert protect(plain, sensitive=False, keys=None) is plain
    envelope = decode_event(plain.data)
    assert open_event(envelope, plain.headers, None) is envelope


def test_a_sensitive_event_without_keys_is_an_error_never_plaintext() -> None:
    plain = build_event("jelmore.session.output", "session.output", "s1", SECRET, now=NOW)
    with pytest.raises(EventError) as caught:
        protect(plain, sensitive=True, keys=None)
    assert str(caught.value) == (
        "session.output events are sensitive and no encryption key is configured"
        " (set JELMORE_ENCRYPTION_KEYS): not published"
    )


def test_only_the_runtime_sets_the_encryption_header() -> None:
    plain = build_event(
        "jelmore.session.output",
        "session.output",
        "s1",
        {},
        now=NOW,
        headers={"jelmore-encryption": "x"},
    )
    with pytest.raises(EventError, match="header Jelmore-Encryption is set by the runtime only"):
        protect(plain, sensitive=False, keys=None)


def test_reveal_shows_the_key_id_when_the_payload_cannot_be_decrypted() -> None:
    envelope, headers = sealed_event(ring(f"a:{B64_A}"))
    assert reveal_event(envelope, headers, None)["payload"] == "<encrypted: key a>"
    assert reveal_event(envelope, headers, ring(f"b:{B64_B}"))["payload"] == "<encrypted: key a>"
    assert reveal_event(envelope, headers, ring(f"a:{B64_A}"))["payload"] == SECRET


def test_the_settings_call_a_type_sensitive_by_set_or_by_predicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    keys = f"a:{B64_A}"
    by_set = Runtime(encryption_keys=keys, sensitive_event_types={"session.output"})
    by_predicate = Runtime(encryption_keys=keys, sensitive_event_types=lambda t: t.endswith("put"))
    for runtime in (by_set, by_predicate):
        assert runtime.settings.is_sensitive("session.output")
        assert not runtime.settings.is_sensitive("session.status")
    plain = build_event("jelmore.session.output", "session.output", "s1", SECRET, now=NOW)
    nokeys = Runtime(sensitive_event_types={"session.output"})
    with pytest.raises(EventError, match="sensitive and no encryption key"):
        protect(plain, sensitive=True, keys=nokeys.settings.encryption_keys)


def test_sensitive_event_types_must_be_event_type_names() -> None:
    with pytest.raises(SettingsError) as caught:
        from_env({}, sensitive_event_types={"session output"})
    assert str(caught.value) == (
        "sensitive_event_types: 'session output' is not an event type name"
    )
    with pytest.raises(SettingsError, match="not a str"):
        from_env({}, sensitive_event_types="session.output")
    assert from_env({}).is_sensitive("session.output") is False


# -- dead letters ---------------------------------------------------------------------------------


def test_a_dead_letter_keeps_the_ciphertext_and_the_header_and_a_replay_too() -> None:
    keys = ring(f"a:{B64_A}")
    plain = build_event(
        "jelmore.session.output", "session.output", "s1", SECRET, now=NOW, message_id="m1"
    )
    event = protect(plain, sensitive=True, keys=keys)
    ciphertext = decode_event(event.data)["payload"]
    record = build_dead_letter(
        dlq_subject="jelmore.dlq.g.jelmore.session.output",
        original_subject=event.subject,
        original_data=event.data,
        original_headers=event.headers,
        stream="JELMORE",
        consumer="g",
        stream_seq=7,
        num_delivered=1,
        failure_reason="cannot decrypt (key a)",
        now=NOW,
    )
    body = json.loads(record.data)
    assert body["payload"] == ciphertext
    assert b"hunter2" not in record.data
    assert record.headers[HDR_ENCRYPTION] == "AES-256-GCM; kid=a"
    assert open_event(body, record.headers, keys)["payload"] == SECRET  # `dlq show` with the key

    replayed = replay_from_dead_letter(
        body,
        dlq_stream="JELMORE_DLQ",
        dlq_seq=3,
        now=NOW,
        encryption=record.headers[HDR_ENCRYPTION],
    )
    assert replayed.headers[HDR_ENCRYPTION] == "AES-256-GCM; kid=a"
    assert b"hunter2" not in replayed.data
    assert open_event(decode_event(replayed.data), replayed.headers, keys)["payload"] == SECRET


# -- the CLI --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("events", "replay"), ("events", "dlq", "show", "1")])
def test_the_cli_refuses_a_malformed_key_in_one_line_without_the_value(
    command: tuple[str, ...],
) -> None:
    bad = "prod:" + base64.b64encode(os.urandom(20)).decode()
    proc = run_cli(*command, "-s", "nats://127.0.0.1:1", env={ENV_VAR: bad})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr == (
        "Error: JELMORE_ENCRYPTION_KEYS: key 1 is 20 bytes long; AES-256 needs 32 bytes\n"
    )
    assert bad.split(":")[1] not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
