import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys as ak


def ed_key(comment="alice@laptop"):
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{raw} {comment}".strip()


def rsa_key():
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def test_parse_plain_key_with_comment():
    line = ed_key("alice@laptop with spaces")
    key = ak.parse_key(line)
    assert key.type == "ssh-ed25519"
    assert key.comment == "alice@laptop with spaces"
    assert key.options == ""
    assert key.line() == line


def test_parse_key_with_quoted_options_containing_blanks():
    base = ed_key("bob")
    line = f'from="10.0.0.1, 10.0.0.2",command="echo hi there" {base}'
    key = ak.parse_key(line)
    assert key.options == 'from="10.0.0.1, 10.0.0.2",command="echo hi there"'
    assert key.comment == "bob"
    assert key.identity == ak.parse_key(base).identity


def test_fingerprint_matches_openssh_format():
    line = ed_key()
    blob = line.split()[1]
    expected = base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")
    assert ak.parse_key(line).fingerprint == "SHA256:" + expected


def test_describe_never_shows_the_key_blob():
    line = ed_key("carol")
    key = ak.parse_key(line)
    assert line.split()[1] not in key.describe()
    assert key.describe().startswith("ssh-ed25519 SHA256:")
    assert key.describe().endswith("carol")


def test_rsa_keys_parse():
    assert ak.parse_key(rsa_key()).type == "ssh-rsa"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "empty"),
        ("# a comment", "empty"),
        ("ssh-ed25519", "no key data"),
        ("ssh-ed25519 not*base64", "base64"),
        ("hello world", "no known key type"),
        ('from="x ssh-ed25519 AAAA', "quote"),
    ],
)
def test_invalid_lines_are_refused_with_a_reason(line, message):
    with pytest.raises(ak.InvalidKeyError, match=message):
        ak.parse_key(line)


def test_type_must_match_the_blob():
    blob = ed_key().split()[1]
    with pytest.raises(ak.InvalidKeyError, match="ssh-ed25519 key, not ssh-rsa"):
        ak.parse_key(f"ssh-rsa {blob}")


def test_parse_file_separates_keys_from_other_lines():
    one, two = ed_key("one"), ed_key("two")
    keys, other = ak.parse_file(f"# header\n{one}\n\ngarbage line\n{two}\n")
    assert [k.comment for k in keys] == ["one", "two"]
    assert other == ["# header", "garbage line"]


def test_render_and_describe_file():
    one = ak.parse_key(ed_key("one"))
    text = ak.render_file([one], header="managed")
    assert text == f"# managed\n{one.line()}\n"
    assert ak.render_file([], header="managed") == ""
    view = ak.describe_file(text + "junk\n")
    assert one.blob not in view
    assert "SHA256:" in view
    assert "(unparsable line of 4 characters)" in view


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoNA3UeMJhUtM4NrCOe3/2yodrhUrBx80IK7XvupUQZ other"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1 " + KEY, "the option '1' is not one sshd accepts"),
        ("bogus " + KEY, "the option 'bogus' is not one sshd accepts"),
        ("from " + KEY, "the option 'from' needs a value"),
        ('no-pty="x" ' + KEY, "the option 'no-pty' takes no value"),
        ("no-pty, " + KEY, "end with ','"),
        (KEY + "\x0cssh-ed25519 AAAA", r"the control character '\\x0c'"),
        (KEY + "\u2028" + KEY, r"the control character '\\u2028'"),
    ],
)
def test_lines_sshd_would_refuse_or_read_otherwise_are_not_keys(line, message):
    with pytest.raises(ak.InvalidKeyError, match=message):
        ak.parse_key(line)


def test_options_sshd_knows_are_kept():
    key = ak.parse_key('from="10.0.0.0/8",No-Pty,command="/bin/sh -c \\"id\\"" ' + KEY)
    assert key.options == 'from="10.0.0.0/8",No-Pty,command="/bin/sh -c \\"id\\""'
