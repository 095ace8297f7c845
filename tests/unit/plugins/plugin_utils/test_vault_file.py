"""The controller's encrypted stores: ansible-vault encrypted, written atomically, refused when foreign."""

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import controller_store, policy
from ansible_collections.bulwark.hardening.plugins.plugin_utils import vault_file

SPECS, _UNUSED = policy.normalise([{"name": "db", "type": "password"}], {})


def vault(password):
    return VaultLib([("default", VaultSecret(password.encode()))])


def test_the_store_is_encrypted_and_reads_back(tmp_path):
    path = str(tmp_path / "new/host.vault")
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    vault_file.write(vault("pw"), path, controller_store.dumps(document), None, "store_vault_id")
    raw = (tmp_path / "new/host.vault").read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.1;AES256") and document["secrets"]["db"]["candidate"] not in raw
    assert (tmp_path / "new/host.vault").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["host.vault"]  # no temporary left
    assert controller_store.parse(vault_file.read(vault("pw"), path, "store_file")) == document
    assert vault_file.read(vault("pw"), str(tmp_path / "missing"), "store_file") is None


def test_a_wrong_password_or_a_plain_file_is_refused_naming_the_store(tmp_path):
    path = str(tmp_path / "host.vault")
    vault_file.write(vault("pw"), path, "{}", None, "store_vault_id")
    with pytest.raises(AnsibleActionFail, match=r"store_file: .*host\.vault.*Nothing was applied"):
        vault_file.read(vault("other"), path, "store_file")
    (tmp_path / "plain").write_text('{"secrets": {}}')
    with pytest.raises(AnsibleActionFail, match="plain is not ansible-vault encrypted"):
        vault_file.read(vault("pw"), str(tmp_path / "plain"), "store_file")
    with pytest.raises(
        AnsibleActionFail, match="overlay_preshared_key_store: an encrypted store needs a vault"
    ):
        vault_file.require_secret(VaultLib([]), "overlay_preshared_key_store")
