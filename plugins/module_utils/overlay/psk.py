"""Preshared keys, one per pair of members (pure): the controller's store document and a host's share.

WireGuard mixes a pair's preshared key into every handshake, so traffic recorded today stays secret even
if X25519 falls to a quantum computer later. Each pair's key is drawn at random on the controller and
kept in one ansible-vault encrypted document, ``{"pairs": {"a|b": key}}`` (names in order); each host is
given the keys of its own peers only, on a no_log option, and never returns them.
"""

import base64
import hashlib
import json
import secrets as random

from .mesh import KEY_PATTERN, MeshError


def pair(a, b):
    """The store's name for the pair (member names hold no "|")."""
    return "|".join(sorted((a, b)))


def parse(text):
    """The document from its decrypted text (None: a new store)."""
    if text is None:
        return {"pairs": {}}
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("pairs"), dict):
        raise ValueError("not a bulwark overlay preshared-key store")
    return document


def dumps(document):
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def draw():
    """A new preshared key: 32 bytes of the OS's randomness, base64 (what `wg genpsk` prints)."""
    return base64.b64encode(random.token_bytes(32)).decode()


def for_host(document, me, peers, generate=True):
    """(the document, with a key drawn for every pair of me and a peer that has none when generate;
    {peer: key, or None where it has none yet})."""
    result = json.loads(json.dumps(document))
    keys = {}
    for peer in peers:
        name = pair(me, peer)
        if name not in result["pairs"] and generate:
            result["pairs"][name] = draw()
        keys[peer] = result["pairs"].get(name)
    return result, keys


def check(keys, where="preshared_key_values"):
    """Each value a WireGuard key (or None: predicted in check mode); the message names the peer, never the
    value."""
    if not isinstance(keys, dict):
        raise MeshError(f"{where}: not a mapping of peer names to keys. Nothing was applied")
    for peer, key in keys.items():
        if key is not None and (not isinstance(key, str) or not KEY_PATTERN.fullmatch(key)):
            raise MeshError(
                f"{where}[{peer!r}]: not a WireGuard key (base64 of 32 bytes). Nothing was applied"
            )
    return keys


def fingerprint(key):
    """What the module compares and may show of a preshared key: a short hash, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
