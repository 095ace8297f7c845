"""The overlay's action plugin: each pair's preshared key drawn once on the controller, kept encrypted, and
given to both of its hosts (and to nobody else); check mode draws nothing."""

from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.bulwark.hardening.plugins.action.overlay import ActionModule
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import psk
from ansible_collections.bulwark.hardening.plugins.plugin_utils import vault_file

MEMBERS = [{"name": n} for n in ("a", "b", "c")]


def run(name, store, check_mode=False, vault_password="pw", **extra):  # noqa: S107  (a test vault)
    """The action for host name; (the module's arguments, as the host would get them)."""
    loader = DataLoader()
    if vault_password:
        loader.set_vault_secrets([("default", VaultSecret(vault_password.encode()))])
    args = {
        "name": name,
        "members": MEMBERS,
        "preshared_keys": True,
        "preshared_key_store": str(store),
        **extra,
    }
    task = mock.MagicMock(args=args, check_mode=check_mode, async_val=0, diff=False)
    action = ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    sent = []
    action._execute_module = lambda module_name, module_args, task_vars: sent.append(module_args) or {}
    action.run(task_vars={})
    return sent[0]


def test_a_pair_gets_one_key_drawn_once_and_kept_encrypted(tmp_path):
    store = tmp_path / "psk.vault"
    a = run("a", store)["preshared_key_values"]
    b = run("b", store)["preshared_key_values"]
    assert sorted(a) == ["b", "c"] and sorted(b) == ["a", "c"]
    assert a["b"] == b["a"] and len({a["b"], a["c"], b["c"]}) == 3
    raw = store.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.1;AES256") and a["b"] not in raw
    assert store.stat().st_mode & 0o777 == 0o600
    # A second run draws nothing: the file stays byte for byte.
    run("a", store)
    assert store.read_text() == raw
    document = psk.parse(vault_file.read(VaultLib([("default", VaultSecret(b"pw"))]), str(store), "x"))
    assert sorted(document["pairs"]) == ["a|b", "a|c", "b|c"]


def test_check_mode_draws_nothing(tmp_path):
    store = tmp_path / "psk.vault"
    assert run("a", store, check_mode=True)["preshared_key_values"] == {"b": None, "c": None}
    assert not store.exists()


def test_keys_given_by_the_play_are_ignored_and_the_store_is_required(tmp_path):
    sent = run("a", tmp_path / "s.vault", preshared_key_values={"b": "forged"})
    assert sent["preshared_key_values"]["b"] != "forged"
    with pytest.raises(AnsibleActionFail, match="overlay_preshared_key_store: required"):
        run("a", "")
    with pytest.raises(
        AnsibleActionFail, match="overlay_preshared_key_store: an encrypted store needs a vault"
    ):
        run("a", tmp_path / "t.vault", vault_password=None)
    run("a", tmp_path / "u.vault")
    with pytest.raises(
        AnsibleActionFail, match=r"overlay_preshared_key_store: .*u\.vault.*Nothing was applied"
    ):
        run("a", tmp_path / "u.vault", vault_password="wrong")  # noqa: S106


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"key_dir": "/etc/x;touch /etc/pwned"}, r"^overlay_key_dir: .*';'.*Nothing was applied$"),
        (
            {"state": "absent", "interface": "../ssh/sshd_config.d/10-bulwark"},
            r"^bulwark_overlay_interface: ",
        ),
        ({"state": "status", "key_dir": "/etc/$(id)"}, r"^overlay_key_dir: "),
        # "a|b" and "c" would share the store's entry of "a" and "b|c".
        ({"members": [{"name": "a"}, {"name": "b|c"}]}, r"^members\[1\]\.name: 'b\|c' is not a host name"),
    ],
)
def test_bad_input_is_refused_before_the_store_is_read_or_a_key_drawn(tmp_path, extra, message):
    store = tmp_path / "psk.vault"
    with pytest.raises(AnsibleActionFail, match=message):
        run("a", store, **extra)
    assert not store.exists() and not (tmp_path / "psk.vault.lock").exists()
