"""validate_input on the secrets role: its real task file and spec; bad input named before any change."""

import pytest
from test_validate_input import validate

CONSUMERS = {"api": {"directory": "/etc/api/secrets", "group": "api", "service": "api.service"}}


def test_the_secrets_role_is_checked_with_its_module():
    result = validate(
        ["secrets"],
        secrets_definitions=[{"name": "jwt", "type": "rsa", "consumers": ["api"]}],
        secrets_consumers=CONSUMERS,
    )
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == ["bulwark.hardening.secret_store"]


@pytest.mark.parametrize(
    ("host_vars", "error"),
    [
        (
            {"secrets_definitions": [{"name": "jwt", "type": "rsa", "bits": 1024}]},
            "secrets (bulwark.hardening.secret_store): secrets[0].bits: RSA 1024 is below the minimum of 2048"
            " (set by secrets_definitions)",
        ),
        (
            {"secrets_definitions": [{"name": "admin", "type": "password", "length": 20}]},
            "secrets[0].length: 20 is below the policy minimum of 32 for a password"
            " (set by secrets_definitions)",
        ),
        (
            {"secrets_definitions": [{"name": "a", "type": "password", "consumers": ["web"]}]},
            "secrets[0].consumers[0]: 'web' is not a declared consumer (declared: none)",
        ),
        (
            {"secrets_backend": "consul"},
            "secrets: value of secrets_backend must be one of: files, vault, ansible_vault, got: consul",
        ),
        ({"secrets_compromised_since": "last week"}, "compromised_since: 'last week' is not a date"),
        (
            {"secrets_definitions": [{"name": "a", "type": "password"}], "secrets_rotate": ["b"]},
            "rotate[0]: 'b' is not a declared secret",
        ),
        (
            {
                "secrets_definitions": [{"name": "a", "type": "password"}],
                "secrets_incident_keep_overlap": ["b"],
            },
            "keep_overlap[0]: 'b' is not a declared secret (set by secrets_incident_keep_overlap)",
        ),
        (
            {
                "secrets_definitions": [
                    {"name": "k", "type": "ed25519", "consumers": ["api"], "signers": ["web"]}
                ],
                "secrets_consumers": CONSUMERS,
            },
            "secrets[0].signers[0]: 'web' is not one of secrets[0].consumers (api)",
        ),
    ],
)
def test_bad_input_is_refused_naming_it(host_vars, error):
    result = validate(["secrets"], **host_vars)
    assert result["failed"] and result["changed"] is False
    assert any(error in line for line in result["errors"]), result["errors"]
    assert "nothing was applied" in result["msg"]
