"""Mozilla's server-side TLS profiles as data, for nginx 1.22 / 1.26 with OpenSSL 3.0 / 3.5 (pure).

Source: Mozilla's Server Side TLS guidelines, version 5.7 (https://ssl-config.mozilla.org/guidelines/5.7.json),
and the nginx output of Mozilla's configuration generator (ssl-config-generator, src/templates/partials/
nginx.hbs). The values are copied, not fetched: a change of Mozilla's guidelines is a reviewed change of this
file (tests/unit/plugins/module_utils/edge/test_edge_profiles.py holds the published values).

Choices beyond the guidelines, each on purpose:
- TLS 1.3 suites: OpenSSL 3.0 and 3.5 enable exactly the three suites of both profiles by default, and nginx
  1.22 has no directive for them, so none is written (as the generator does).
- Session tickets are off on both nginx versions. The generator drops `ssl_session_tickets off` from nginx
  1.23.2 on (nginx then rotates the ticket keys of a shared session cache itself); off keeps one rendering
  for Debian 12 and 13 and costs only a full handshake after the cache's timeout.
- DHE: nginx uses no DHE suite without `ssl_dhparam` (since 1.11.0), and a DHE suite without parameters is
  silently never chosen. The intermediate profile names DHE-RSA suites, so its rendering carries the RFC 7919
  group ffdhe2048 as a file (FFDHE2048_PEM, written by the module; OpenSSL 3 reads it as "GROUP: ffdhe2048").
  It is a published constant, not generated per host: RFC 7919's groups are what Mozilla's generator ships
  (https://ssl-config.mozilla.org/ffdhe2048.txt) and a fixed safe prime has no secret to keep.
- Curves: X25519:prime256v1:secp384r1, as the guidelines list them. On OpenSSL 3.5 (Debian 13) this also
  leaves out OpenSSL's default post-quantum hybrid X25519MLKEM768; the guidelines of version 5.7 predate it.
"""

import base64
from dataclasses import dataclass

SOURCE = "Mozilla Server Side TLS guidelines 5.7"
SOURCE_URL = "https://ssl-config.mozilla.org/guidelines/5.7.json"
DEFAULT = "intermediate"


@dataclass(frozen=True)
class Profile:
    """One profile: what nginx's ssl_* directives are rendered from."""

    name: str
    protocols: tuple  # ssl_protocols, in nginx's spelling
    ciphers: tuple  # TLS 1.2 suites, OpenSSL names, in the guidelines' order (empty: TLS 1.3 only)
    ciphersuites: tuple  # TLS 1.3 suites (OpenSSL's defaults; recorded, not rendered)
    curves: tuple  # ssl_ecdh_curve
    dh_param_size: int  # 0: no DHE suite, no ssl_dhparam
    hsts_min_age: int
    prefer_server_ciphers: bool
    session_tickets: bool
    session_timeout: str
    session_cache_size: str
    ocsp_staple: bool
    certificate_types: tuple
    rsa_key_size: int  # 0: no RSA certificate in the profile
    maximum_certificate_lifespan: int  # days
    oldest_clients: tuple

    @property
    def uses_dhe(self):
        """Whether a finite-field Diffie-Hellman suite is enabled (and so ssl_dhparam is needed)."""
        return any(cipher.startswith("DHE-") for cipher in self.ciphers)


_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_CURVES = ("X25519", "prime256v1", "secp384r1")
_INTERMEDIATE_CLIENTS = (
    "Firefox 27", "Android 4.4.2", "Chrome 31", "Edge", "IE 11 on Windows 7", "Java 8u31", "OpenSSL 1.0.1",
    "Opera 20", "Safari 9",
)  # fmt: skip
_MODERN_CLIENTS = (
    "Firefox 63", "Android 10.0", "Chrome 70", "Edge 75", "Java 11", "OpenSSL 1.1.1", "Opera 57",
    "Safari 12.1",
)  # fmt: skip

# What the two profiles (and this rendering) have in common.
_SHARED = {
    "ciphersuites": _TLS13,
    "curves": _CURVES,
    "hsts_min_age": 63072000,
    "prefer_server_ciphers": False,
    "session_tickets": False,
    "session_timeout": "1d",
    "session_cache_size": "10m",
    "ocsp_staple": True,
}
PROFILES = {
    "intermediate": Profile(
        name="intermediate",
        protocols=("TLSv1.2", "TLSv1.3"),
        ciphers=(
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "DHE-RSA-AES128-GCM-SHA256",
            "DHE-RSA-AES256-GCM-SHA384",
            "DHE-RSA-CHACHA20-POLY1305",
        ),
        dh_param_size=2048,
        **_SHARED,
        certificate_types=("ecdsa", "rsa"),
        rsa_key_size=2048,
        maximum_certificate_lifespan=366,
        oldest_clients=_INTERMEDIATE_CLIENTS,
    ),
    "modern": Profile(
        name="modern",
        protocols=("TLSv1.3",),
        ciphers=(),
        dh_param_size=0,
        **_SHARED,
        certificate_types=("ecdsa",),
        rsa_key_size=0,
        maximum_certificate_lifespan=90,
        oldest_clients=_MODERN_CLIENTS,
    ),
}

# The RFC 7919 (appendix A.1) group ffdhe2048: p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1,
# generator 2. The unit tests recompute p from that formula and have OpenSSL name the group.
FFDHE2048_PRIME = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9"
    "7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB"
    "B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA"
    "886B423861285C97FFFFFFFFFFFFFFFF",
    16,
)
FFDHE2048_GENERATOR = 2


def _der(tag, content):
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def _der_integer(value):
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # a leading 0 keeps it positive


def _dh_parameters_pem(prime, generator):
    """PKCS #3 DHParameter (SEQUENCE { prime, generator }) as PEM, which nginx's ssl_dhparam reads."""
    body = base64.b64encode(_der(0x30, _der_integer(prime) + _der_integer(generator))).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines) + "\n-----END DH PARAMETERS-----\n"


FFDHE2048_PEM = _dh_parameters_pem(FFDHE2048_PRIME, FFDHE2048_GENERATOR)
