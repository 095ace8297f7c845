"""Generating values, fingerprints and JWK sets (pure: the OS random source and `cryptography` only).

Nothing here is home-made cryptography: characters are drawn with `secrets.choice`, bytes with
`os.urandom` (through `secrets.token_bytes`), key pairs by `cryptography`. A value never leaves these
functions except as the return value; fingerprints are SHA-256 based and safe to record.
"""

import base64
import hashlib
import json
import secrets as random

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.policy import ALPHABETS

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
except ImportError:  # the module reports the missing requirement by name
    serialization = None


def generate(spec):
    """A new value (text) for a normalised secret spec."""
    kind = spec["type"]
    if kind in ("password", "token"):
        alphabet = ALPHABETS[spec["alphabet"]]
        return "".join(random.choice(alphabet) for _position in range(spec["length"]))
    if kind == "symmetric":
        return base64.b64encode(random.token_bytes(spec["length"])).decode("ascii")
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=spec["bits"])
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def is_key_pair(spec):
    return spec["type"] in ("rsa", "ed25519")


def _private(value):
    return serialization.load_pem_private_key(value.encode("ascii"), password=None)


def meets(spec, value):
    """Whether a stored value still meets the policy (length, alphabet, key type and size)."""
    kind = spec["type"]
    if kind in ("password", "token"):
        return len(value) >= spec["length"] and set(value) <= set(ALPHABETS[spec["alphabet"]])
    if kind == "symmetric":
        try:
            return len(base64.b64decode(value, validate=True)) >= spec["length"]
        except ValueError:
            return False
    try:
        key = _private(value)
    except ValueError:
        return False
    if kind == "rsa":
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size >= spec["bits"]
    return isinstance(key, ed25519.Ed25519PrivateKey)


def public_pem(value):
    return (
        _private(value)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(number):
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def public_jwk(value):
    """The public JWK of a private key PEM, with kid = its RFC 7638 thumbprint, alg and use."""
    public = _private(value).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        members = {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
        alg = "RS256"
    else:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
        alg = "EdDSA"
    return {**members, "kid": thumbprint(members), "alg": alg, "use": "sig"}


def thumbprint(members):
    """RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace, base64url."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def jwks(values):
    """The JWK set text of these private keys (newest first, as given), public parts only."""
    return json.dumps({"keys": [public_jwk(value) for value in values]}, indent=2, sort_keys=True) + "\n"


def fingerprint(spec, value):
    """What the metadata records about a value: a key's JWK thumbprint, a SHA-256 prefix of other values."""
    if is_key_pair(spec):
        return "jwk:" + public_jwk(value)["kid"]
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
