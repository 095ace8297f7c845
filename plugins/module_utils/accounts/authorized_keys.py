"""authorized_keys lines: parse, identify, fingerprint, render.

A key is identified by its type and its base64 blob; options and comments do not change which
key it is. Fingerprints are OpenSSH's (``SHA256:`` and unpadded base64 of the blob's SHA-256), so
a diff can name a key without showing it. Pure: no host access.
"""

import base64
import binascii
import hashlib
import re
import struct

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    }
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


class InvalidKeyError(ValueError):
    """A line that is not a usable public key."""


class PublicKey:
    """One authorized_keys entry: options, type, blob (base64 text), comment."""

    __slots__ = ("blob", "comment", "options", "type")

    def __init__(self, key_type, blob, comment="", options=""):
        self.type = key_type
        self.blob = blob
        self.comment = comment
        self.options = options

    @property
    def identity(self):
        return (self.type, self.blob)

    @property
    def fingerprint(self):
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def describe(self):
        """What a diff or a message shows: type, fingerprint, comment; never the key itself."""
        text = f"{self.type} {self.fingerprint}"
        if self.comment:
            text += f" {self.comment}"
        if self.options:
            text += " (with options)"
        return text

    def line(self):
        parts = [self.options] if self.options else []
        parts += [self.type, self.blob]
        if self.comment:
            parts.append(self.comment)
        return " ".join(parts)

    def __eq__(self, other):
        return isinstance(other, PublicKey) and self.line() == other.line()

    def __hash__(self):
        return hash(self.line())

    def __repr__(self):
        return f"PublicKey({self.describe()!r})"


def _tokens(line):
    """Split on blanks outside double quotes (options such as from="a, b" may hold blanks)."""
    tokens, current, quoted, escaped = [], [], False, False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in " \t" and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if quoted:
        raise InvalidKeyError("unbalanced double quote in the options")
    if current:
        tokens.append("".join(current))
    return tokens


def _blob_type(blob):
    """The key type written inside the blob (its first SSH string)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKeyError("the key data is not valid base64") from exc
    if len(raw) < 4:
        raise InvalidKeyError("the key data is too short")
    (length,) = struct.unpack(">I", raw[:4])
    if length > len(raw) - 4 or length > 64:
        raise InvalidKeyError("the key data is malformed")
    return raw[4 : 4 + length].decode("ascii", "replace")


# sshd's authorized_keys options (sshd(8) AUTHORIZED_KEYS FILE FORMAT, OpenSSH 9.2 to 10.0): sshd refuses a
# line with any other, so the module must not count such a line as a key that logs in.
OPTIONS = frozenset(
    {
        "agent-forwarding", "cert-authority", "command", "environment", "expiry-time", "from",
        "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-user-rc", "no-x11-forwarding",
        "no-touch-required", "permitlisten", "permitopen", "port-forwarding", "principals", "pty",
        "restrict", "tunnel", "user-rc", "verify-required", "x11-forwarding",
    }
)  # fmt: skip
VALUED_OPTIONS = frozenset(
    {"command", "environment", "expiry-time", "from", "permitlisten", "permitopen", "principals", "tunnel"}
)
_OPTION = re.compile(r'([A-Za-z0-9-]+)(="(?:[^"\\]|\\.)*")?')


def _check_options(options):
    """Each comma-separated option one sshd knows, its value (if any) double-quoted."""
    position = 0
    while position < len(options):
        match = _OPTION.match(options, position)
        if not match:
            raise InvalidKeyError("the options field is not name or name=\"value\" options separated by ','")
        name = match.group(1).lower()
        if name not in OPTIONS:
            raise InvalidKeyError(f"the option {match.group(1)!r} is not one sshd accepts")
        if (name in VALUED_OPTIONS) != bool(match.group(2)):
            need = "needs a value" if name in VALUED_OPTIONS else "takes no value"
            raise InvalidKeyError(f"the option {match.group(1)!r} {need}")
        position = match.end()
        if position < len(options):
            if options[position] != ",":
                raise InvalidKeyError("the options must be separated by ','")
            position += 1
            if position == len(options):
                raise InvalidKeyError("the options end with ','")


def parse_key(line):
    """One public key line (optionally with options and a comment) -> PublicKey, or InvalidKeyError."""
    text = line.strip()
    if not text or text.startswith("#"):
        raise InvalidKeyError("empty line or comment, not a key")
    if "\n" in text or "\r" in text:
        raise InvalidKeyError("a key must be a single line")
    # sshd reads the file by line feeds only, the module's own parser by str.splitlines(): a form feed or a
    # U+2028 in a comment would make a second "key" that only the module sees. (Tabs separate fields.)
    bad = text_checks.control_character(text, multiline=True)
    if bad:
        raise InvalidKeyError(f"the control character {bad} is not allowed in a key line")
    tokens = _tokens(text)
    for index, token in enumerate(tokens):
        if token in KEY_TYPES:
            if index + 1 >= len(tokens):
                raise InvalidKeyError(f"no key data after {token}")
            blob = tokens[index + 1]
            if not _BASE64.match(blob):
                raise InvalidKeyError("the key data is not valid base64")
            inner = _blob_type(blob)
            if inner != token:
                raise InvalidKeyError(f"the key data is a {inner} key, not {token}")
            options = " ".join(tokens[:index])
            if index > 1:
                raise InvalidKeyError("options must be one comma-separated field before the key type")
            if options:
                _check_options(options)
            return PublicKey(token, blob, " ".join(tokens[index + 2 :]), options)
    raise InvalidKeyError("no known key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*) in the line")


def parse_file(text):
    """authorized_keys text -> (keys, other_lines). Comments, blanks and unparsable lines are 'other'."""
    keys, other = [], []
    for raw in (text or "").splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            keys.append(parse_key(stripped))
        except InvalidKeyError:
            other.append(stripped)
    return keys, other


def render_file(keys, header=None):
    """The authorized_keys text for a list of keys (empty text for none)."""
    lines = [f"# {header}"] if header and keys else []
    lines += [key.line() for key in keys]
    return "".join(line + "\n" for line in lines)


def describe_file(text):
    """A diff-safe view of authorized_keys text: one line per key by fingerprint and comment."""
    keys, other = parse_file(text)
    lines = [key.describe() for key in keys]
    lines += [f"(unparsable line of {len(line)} characters)" for line in other if not line.startswith("#")]
    return "".join(line + "\n" for line in lines)


def identities(keys):
    return {key.identity for key in keys}
