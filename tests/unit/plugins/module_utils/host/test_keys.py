"""host/keys.py: a host key regenerated beside the old one and written as any file is (fsync, no link)."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.keys import regenerate_host_key

KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
pytestmark = pytest.mark.skipif(not os.path.exists(KEYGEN), reason="ssh-keygen is not installed")


class Runner:
    def __init__(self):
        self.argvs = []

    def run(self, argv, data=None, check=False, what=None, env=None):
        self.argvs.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode:
            raise files.HostError(f"{what} failed (rc={done.returncode})")
        return done.returncode, done.stdout, done.stderr


def bits(path):
    return int(
        subprocess.run([KEYGEN, "-lf", path], capture_output=True, text=True, check=True).stdout.split()[0]
    )


def test_the_new_pair_replaces_the_old_with_its_modes_and_no_leftover(tmp_path):
    key = str(tmp_path / "ssh_host_rsa_key")
    subprocess.run([KEYGEN, "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", key], check=True)
    regenerate_host_key(Runner(), KEYGEN, key, "rsa", 2048)
    assert bits(key) == 2048 and bits(key + ".pub") == 2048
    assert files.mode_of(key) == 0o600 and files.mode_of(key + ".pub") == 0o644
    assert sorted(os.listdir(tmp_path)) == ["ssh_host_rsa_key", "ssh_host_rsa_key.pub"]


def test_a_link_at_the_key_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    key = tmp_path / "ssh_host_rsa_key"
    key.symlink_to(victim)
    with pytest.raises(files.HostError, match="is a symbolic link: refusing to write through it"):
        regenerate_host_key(Runner(), KEYGEN, str(key), "rsa", 2048)
    assert victim.read_text() == "root's file\n"
    assert sorted(os.listdir(tmp_path)) == ["ssh_host_rsa_key", "victim"]
