"""host/sandbox.py: one private copy of a configuration tree, removed afterwards."""

import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.sandbox import Sandbox


def test_a_sandbox_is_private_holds_what_is_written_and_is_gone_afterwards(tmp_path):
    with Sandbox("bulwark-test-", parent=str(tmp_path)) as box:
        root = box.path()
        assert os.path.basename(root).startswith("bulwark-test-")
        assert files.mode_of(root) == 0o700
        path = box.write("conf.d/00-x.conf", "Port 22\n")
        assert path == os.path.join(root, "conf.d", "00-x.conf")
        assert files.mode_of(path) == 0o600 and files.mode_of(box.path("conf.d")) == 0o700
        assert box.read("conf.d/00-x.conf") == "Port 22\n"
        assert box.read("absent") is None
    assert not os.path.exists(root)


def test_a_copied_tree_keeps_links_as_links_and_is_removed_on_failure(tmp_path):
    source = tmp_path / "etc"
    (source / "jail.d").mkdir(parents=True)
    (source / "jail.conf").write_text("[DEFAULT]\n")
    (source / "jail.d" / "link.conf").symlink_to("/etc/shadow")
    with pytest.raises(RuntimeError), Sandbox("bulwark-test-", parent=str(tmp_path)) as box:
        copy = box.copy_tree(str(source), "fail2ban")
        assert open(os.path.join(copy, "jail.conf")).read() == "[DEFAULT]\n"
        assert os.readlink(os.path.join(copy, "jail.d", "link.conf")) == "/etc/shadow"
        root = box.path()
        raise RuntimeError("the checker failed")
    assert not os.path.exists(root)


def test_a_tree_that_cannot_be_copied_is_a_host_error_naming_it(tmp_path):
    with Sandbox("bulwark-test-", parent=str(tmp_path)) as box:
        with pytest.raises(files.HostError, match=r"cannot copy .*absent to validate a candidate"):
            box.copy_tree(str(tmp_path / "absent"), "copy")
