"""secret_store's action plugin (backend ansible_vault): its failures are redacted and marked so, a damaged
store fails by name, and nothing the module returns can carry one of the store's values."""

import json
from unittest import mock

from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.bulwark.hardening.plugins.action.secret_store import ActionModule
from ansible_collections.bulwark.hardening.plugins.plugin_utils import vault_file

SECRETS = [{"name": "db", "type": "password", "consumers": ["app"]}]
CONSUMERS = {"app": {"directory": "/etc/app/secrets"}}


def run(store, module_result=None, **extra):
    """(the action's result, the module arguments sent) with the module answering module_result."""
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(b"pw"))])
    args = {"secrets": SECRETS, "consumers": CONSUMERS, "backend": "ansible_vault", "store_file": str(store)}
    task = mock.MagicMock(args={**args, **extra}, check_mode=False, async_val=0, diff=False)
    action = ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    sent = []

    def execute_module(module_name, module_args, task_vars):
        sent.append(module_args)
        return dict(module_result or {"failed": True, "msg": "no answer", "redacted": True})

    action._execute_module = execute_module
    return action.run(task_vars={}), sent


def stored(store):
    return json.loads(vault_file.read(VaultLib([("default", VaultSecret(b"pw"))]), str(store), "x"))


def test_whatever_the_module_says_cannot_carry_a_value_of_the_store(tmp_path):
    store = tmp_path / "host.vault"
    run(store)  # draws the candidate
    candidate = stored(store)["secrets"]["db"]["candidate"]
    echo = {"failed": True, "msg": f"refused {candidate} and {candidate[:14]}", "steps": [candidate]}
    result, sent = run(store, echo)
    assert sent[0]["store_values"]["db"]["candidate"] == candidate  # given to the module, no_log
    assert candidate[:14] not in json.dumps(result)
    assert result["msg"] == "refused [value redacted] and [value redacted]"
    assert "redacted" not in result  # the module did not say it redacted: the role will not print it


def test_its_own_failures_are_redacted_and_marked(tmp_path):
    result, sent = run(tmp_path / "host.vault", store_file="")
    assert (result["failed"], result["redacted"], sent) == (True, True, [])
    assert result["msg"] == "store_file: required with backend ansible_vault. Nothing was applied"


def test_a_damaged_store_fails_naming_the_secret_not_a_traceback(tmp_path):
    store = tmp_path / "host.vault"
    vault = VaultLib([("default", VaultSecret(b"pw"))])
    vault_file.write(vault, str(store), json.dumps({"secrets": {"db": {"versions": ["x"]}}}), None, "v")
    result, sent = run(store)
    assert result["failed"] and result["redacted"] and sent == []
    assert result["msg"] == (
        f"store_file: {store}: db: versions is not a mapping of version numbers to values."
        " Nothing was applied"
    )


def test_colliding_names_are_refused_before_the_store_is_touched(tmp_path):
    store = tmp_path / "host.vault"
    secrets = [*SECRETS, {"name": "db.accept", "type": "password", "consumers": ["app"]}]
    result, sent = run(store, secrets=secrets)
    assert result["failed"] and result["redacted"] and sent == [] and not store.exists()
    assert "'db.accept' and secrets[0].name 'db' both write /etc/app/secrets/db.accept" in result["msg"]


def test_an_acknowledgement_goes_to_the_module_without_reading_the_store(tmp_path):
    """The role's second call, after it has shown a result: no store file is read or drawn into."""
    store = tmp_path / "never-read.vault"
    result, sent = run(store, {"changed": False, "acknowledged": ["db"]}, acknowledge={"db": 4})
    assert result["acknowledged"] == ["db"] and not store.exists()
    assert (sent[0]["acknowledge"], sent[0]["store_values"], sent[0]["store_file"]) == ({"db": 4}, {}, None)


def test_a_run_gives_its_acknowledgement_back_to_the_role(tmp_path):
    store = tmp_path / "host.vault"
    run(store)  # draws the candidate
    answer = {"secrets": {}, "versions": {}, "acknowledge": {"db": 2}, "redacted": True}
    result, sent = run(store, answer)
    assert result["acknowledge"] == {"db": 2} and len(sent) == 1
