"""host/commands.py: a command's own environment, never this process's."""

import os

from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner


class Module:
    def __init__(self):
        self.calls = []

    def run_command(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        return 0, "", ""


def test_env_goes_to_the_command_only_and_the_c_locale_stays():
    module = Module()
    before = dict(os.environ)
    Runner(module).run(["apt-get", "update"], env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "de_DE"})
    assert module.calls[0][1]["environ_update"] == {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    Runner(module).run(["true"])
    assert module.calls[1][1]["environ_update"] == {"LC_ALL": "C"}
    assert dict(os.environ) == before
