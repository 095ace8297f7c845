"""Scrubbing secret values out of text (pure): every message the secrets code returns passes through here.

A value can reach a message in many shapes: a server or a proxy that echoes the request body (JSON-escaped,
URL-encoded, base64 at any offset), a command that prints its input, a truncated excerpt of any of those.
So a value is looked for as every encoded form of it, and not only whole: any run of `WINDOW` characters
of a form is masked, which also catches a value cut short. A private key is looked for by the lines of its
body, not by its armour (`-----BEGIN PRIVATE KEY-----` is no secret).
"""

import base64
import json
from urllib.parse import quote, quote_plus

MASK = "[value redacted]"
# The shortest piece of a form that is masked: shorter than any value the policy allows (32), long enough
# that ordinary text never matches a random value by chance.
WINDOW = 12
SHORTEST = 6  # a shorter form (the tail of a key's last line) is not worth the noise of masking it
_B64_SAFE = str.maketrans("+/", "-_")


def _base64_cores(data):
    """The part of the base64 text of `data` that is the same wherever it starts in a longer input (at each
    of the three byte offsets), in the standard and the URL-safe alphabet."""
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        # characters whose six bits all come from data: not the first group's shared ones, not the last
        core = encoded[-(-8 * shift // 6) : 8 * (shift + len(data)) // 6]
        cores.update((core, core.translate(_B64_SAFE)))
    return cores


def _pem_body(value):
    """The lines of a PEM key's body (without its armour), or None for a value that is not one."""
    lines = [line.strip() for line in value.strip().splitlines()]
    if len(lines) > 2 and lines[0].startswith("-----BEGIN") and lines[-1].startswith("-----END"):
        return [line for line in lines[1:-1] if line]
    return None


def forms(value):
    """The shapes in which `value` (or a piece of it) may appear in a message."""
    found = set(_base64_cores(value.encode("utf-8")))
    found.add(value.encode("utf-8").hex())
    body = _pem_body(value)
    # A key's lines stand alone in a message that shows the key; a window inside a line is one of the
    # joined body's, a short last line is masked whole.
    secret = "".join(body) if body else value
    found.update(body or ())
    data = secret.encode("utf-8")
    found.update(
        {
            secret,
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            quote(secret, safe=""),
            quote_plus(secret, safe=""),
            data.hex(),
            *_base64_cores(data),
        }
    )
    return {form for form in found if len(form) >= SHORTEST}


class Redactor:
    """Masks the values it was given (and their encodings) in any text or any JSON-like data."""

    def __init__(self, values=()):
        self._values = set()
        self._windows = set()
        self._short = set()  # forms shorter than a window, masked only whole
        self.add(*values)

    def add(self, *values):
        for value in values:
            if not isinstance(value, str) or not value or value in self._values:
                continue
            self._values.add(value)
            for form in forms(value):
                if len(form) < WINDOW:
                    self._short.add(form)
                else:
                    self._windows.update(form[n : n + WINDOW] for n in range(len(form) - WINDOW + 1))

    def scrub(self, text):
        """text with every known value masked (text itself when it holds none)."""
        if not isinstance(text, str) or not self._values:
            return text
        masked = bytearray(len(text))
        for start in range(len(text) - WINDOW + 1):
            if text[start : start + WINDOW] in self._windows:
                masked[start : start + WINDOW] = b"\1" * WINDOW
        for form in self._short:
            start = text.find(form)
            while start >= 0:
                masked[start : start + len(form)] = b"\1" * len(form)
                start = text.find(form, start + 1)
        if not any(masked):
            return text
        out, position = [], 0
        while position < len(text):
            if masked[position]:
                while position < len(text) and masked[position]:
                    position += 1
                out.append(MASK)
            else:
                out.append(text[position])
                position += 1
        return "".join(out)

    def scrub_data(self, data):
        """data (dicts, lists, strings) with every string scrubbed; mapping keys too."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, dict):
            return {self.scrub(key): self.scrub_data(item) for key, item in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub_data(item) for item in data]
        return data


def scrub(text, values):
    """text with every one of values (and its encodings, whole or cut short) masked."""
    return Redactor(values).scrub(text)
