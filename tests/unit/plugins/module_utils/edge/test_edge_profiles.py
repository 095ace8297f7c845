"""The TLS profiles against Mozilla's published guidelines 5.7, and the ffdhe2048 group against RFC 7919."""

import shutil
import subprocess

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.edge import model, profiles

# Copied by hand from https://ssl-config.mozilla.org/guidelines/5.7.json ("configurations"), the keys the
# nginx rendering uses; a reviewer compares this table with the published file, not with profiles.py.
PUBLISHED = {
    "intermediate": {
        "ciphers.openssl": [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "DHE-RSA-AES128-GCM-SHA256",
            "DHE-RSA-AES256-GCM-SHA384",
            "DHE-RSA-CHACHA20-POLY1305",
        ],
        "ciphersuites": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"],
        "dh_param_size": 2048,
        "hsts_min_age": 63072000,
        "ocsp_staple": True,
        "server_preferred_order": False,
        "tls_curves": ["X25519", "prime256v1", "secp384r1"],
        "tls_versions": ["TLSv1.2", "TLSv1.3"],
        "certificate_types": ["ecdsa", "rsa"],
        "rsa_key_size": 2048,
        "maximum_certificate_lifespan": 366,
    },
    "modern": {
        "ciphers.openssl": [],
        "ciphersuites": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"],
        "dh_param_size": None,
        "hsts_min_age": 63072000,
        "ocsp_staple": True,
        "server_preferred_order": False,
        "tls_curves": ["X25519", "prime256v1", "secp384r1"],
        "tls_versions": ["TLSv1.3"],
        "certificate_types": ["ecdsa"],
        "rsa_key_size": None,
        "maximum_certificate_lifespan": 90,
    },
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_profile_is_mozillas_published_profile(name):
    published, profile = PUBLISHED[name], profiles.PROFILES[name]
    assert list(profile.ciphers) == published["ciphers.openssl"]
    assert list(profile.ciphersuites) == published["ciphersuites"]
    assert (profile.dh_param_size or None) == published["dh_param_size"]
    assert profile.hsts_min_age == published["hsts_min_age"]
    assert profile.ocsp_staple is published["ocsp_staple"]
    assert profile.prefer_server_ciphers is published["server_preferred_order"]
    assert list(profile.curves) == published["tls_curves"]
    assert list(profile.protocols) == published["tls_versions"]
    assert list(profile.certificate_types) == published["certificate_types"]
    assert (profile.rsa_key_size or None) == published["rsa_key_size"]
    assert profile.maximum_certificate_lifespan == published["maximum_certificate_lifespan"]
    assert profile.session_tickets is False
    assert profiles.SOURCE_URL.endswith("/5.7.json")


def test_intermediate_is_the_default_and_only_it_needs_dh_parameters():
    assert profiles.DEFAULT == "intermediate" == model.DEFAULTS["profile"]
    assert profiles.PROFILES["intermediate"].uses_dhe
    assert not profiles.PROFILES["modern"].uses_dhe


def test_no_deprecated_header_is_a_default():
    names = {name.lower() for name in model.DEFAULTS["headers"]}
    assert not names & set(model.REFUSED_HEADERS)
    assert names == {
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "permissions-policy",
    }


def _ffdhe2048_from_rfc7919():
    """p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1 (RFC 7919, A.1), e by its series."""
    guard = 256
    term, total, k = 1 << (1918 + guard), 0, 0
    while term:
        total += term
        k += 1
        term //= k
    return 2**2048 - 2**1984 + ((total >> guard) + 560316) * 2**64 - 1


def test_the_dh_group_is_rfc_7919_ffdhe2048():
    assert profiles.FFDHE2048_PRIME == _ffdhe2048_from_rfc7919()
    assert profiles.FFDHE2048_GENERATOR == 2
    assert profiles.FFDHE2048_PEM.startswith("-----BEGIN DH PARAMETERS-----\n")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_reads_the_pem_as_the_named_group(tmp_path):
    path = tmp_path / "ffdhe2048.pem"
    path.write_text(profiles.FFDHE2048_PEM)
    done = subprocess.run(
        ["openssl", "pkeyparam", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "GROUP: ffdhe2048" in done.stdout
    generated = subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated == profiles.FFDHE2048_PEM
