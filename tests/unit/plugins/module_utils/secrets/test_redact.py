"""The redaction: no value, whole, cut short or encoded, survives in a text that went through it."""

import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy, redact

SPECS, _unused = policy.normalise(
    [
        {"name": "password", "type": "password"},
        {"name": "token", "type": "token"},
        {"name": "symmetric", "type": "symmetric"},
        {"name": "hex", "type": "password", "alphabet": "hex"},
    ],
    {},
)
RSA = generate.generate({"type": "rsa", "bits": 2048})
ED25519 = generate.generate({"type": "ed25519"})


def pieces(text, size=redact.WINDOW):
    return {text[n : n + size] for n in range(len(text) - size + 1)}


def leaks(text, value):
    """The pieces of value (raw, or in one of its encodings) of a window's length still in text."""
    shapes = [value, json.dumps(value)[1:-1], quote(value, safe=""), value.encode().hex()]
    body = value.strip().splitlines()
    if body[0].startswith("-----BEGIN"):
        shapes = ["".join(body[1:-1]), *(line for line in body[1:-1] if len(line) >= redact.WINDOW)]
    return {piece for shape in shapes for piece in pieces(shape) if piece in text}


def envelopes(value):
    """How a server, a proxy or a command may put a value in its message."""
    body = json.dumps({"options": {}, "data": {"value": value}})
    for shift in ("", "x", "xy"):
        yield f"400 invalid request: {body}"
        yield f"proxy said: {base64.b64encode((shift + body).encode()).decode()}"
        yield f"proxy said: {base64.urlsafe_b64encode((shift + body).encode()).decode()}"
    yield quote(body)
    yield quote_plus(body)
    yield body.encode().hex()
    yield f"{value[:20]}... (truncated)"
    yield f"ALTER ROLE x PASSWORD '{value}';\n{value[len(value) // 2 :]}"


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(SPECS)),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
@example(kind="password", before='"\n$(`;#\\', after="\x00\x1b]é")
@example(kind="token", before="", after="")
def test_a_drawn_value_never_survives_any_envelope(kind, before, after):
    value = generate.generate(SPECS[kind])
    redactor = redact.Redactor([value])
    for envelope in envelopes(value):
        out = redactor.scrub(before + envelope + after)
        assert value not in out
        assert not leaks(out, value), envelope
        assert redact.MASK in out
    # the encodings at any offset: none of the encoded value's pieces is left
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"#" * shift + value.encode()).decode()
            out = redactor.scrub(encoded)
            assert len(out) < len(encoded) and redact.MASK in out


def test_a_key_is_masked_by_its_body_line_by_line_not_by_its_armour():
    redactor = redact.Redactor([RSA, ED25519])
    for key in (RSA, ED25519):
        for text in (key, json.dumps({"value": key}), f"psql: {key.splitlines()[1]}", key[40:300]):
            out = redactor.scrub(text)
            assert not leaks(out, key), text
        assert "-----BEGIN PRIVATE KEY-----" in redactor.scrub(key)
    assert redactor.scrub(base64.b64encode(RSA.encode()).decode()).count(redact.MASK) == 1


def test_ordinary_text_is_left_alone():
    redactor = redact.Redactor([generate.generate(SPECS["token"]), RSA])
    text = "db: vault: storing version 2 at secret/bulwark/db failed (HTTP 400). Nothing was applied"
    assert redactor.scrub(text) == text
    assert redact.Redactor().scrub(text) == text


def test_data_is_scrubbed_everywhere_and_keeps_its_shape():
    value = generate.generate(SPECS["password"])
    data = {"msg": f"echo {value}", "steps": [f"x {value[:15]}"], "n": 3, "ok": True, value: None}
    out = redact.Redactor([value]).scrub_data(data)
    assert out == {"msg": "echo [value redacted]", "steps": ["x [value redacted]"], "n": 3, "ok": True,
                   "[value redacted]": None}  # fmt: skip
    assert redact.scrub(f"a{value}b", [value]) == "a[value redacted]b"


def test_values_that_are_no_secrets_are_ignored():
    redactor = redact.Redactor([None, "", 5, "abc"])
    assert redactor.scrub("abc def") == "abc def"  # too short to mask without masking ordinary words
