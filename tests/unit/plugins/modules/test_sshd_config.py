"""The module's host-side steps on a scratch tree: waiting for sshd's banner after a reload (host/waits.py,
as the apply's check calls it) and the modes the apply plan sets, run by the executor."""

import socket
import threading

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import executor, files, waits
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import decide
from ansible_collections.bulwark.hardening.plugins.modules import sshd_config


def test_the_listener_wait_sees_an_ssh_banner_and_gives_up_without_one():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer():
        conn, _unused = server.accept()
        conn.sendall(b"SSH-2.0-test\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    assert waits.listener([("::1", 9), ("127.0.0.1", port)], b"SSH-", timeout=5)
    server.close()
    assert not waits.listener([("127.0.0.1", port)], b"SSH-", timeout=0.5)


class Runner:
    def __init__(self):
        self.argvs = []

    def run(self, argv, data=None, check=False, what=None, env=None):
        self.argvs.append(argv)
        return 0, "", ""


def test_a_wrong_mode_is_set_on_the_file_itself_never_through_a_link(tmp_path):
    """The old apply() chmod-ed by path and so changed the mode of whatever a link there points to."""
    victim = tmp_path / "shadow"
    victim.write_text("root:x:\n")
    victim.chmod(0o640)
    main = tmp_path / "sshd_config"
    main.symlink_to(victim)
    plain = tmp_path / "00-bulwark.conf"
    plain.write_text("PermitRootLogin no\n")
    plain.chmod(0o644)
    p = {"path": str(plain), "main_config": str(main), "rsa_host_key_bits": 0, "service": "ssh"}
    text = {"dropin": "PermitRootLogin no\n", "main": "Include x\n"}
    want = {
        **text,
        "mode": 0o600,
        "wrong_modes": [(str(plain), 0o644), (str(main), 0o777)],
        "regenerate_rsa": False,
        "moduli": None,
        "sshd": "/usr/sbin/sshd",
        "reload": False,
    }
    live = {**text, "remove": []}
    with pytest.raises(files.HostError, match="sshd_config is a symbolic link: refusing to change it"):
        executor.Executor(Runner()).run(decide.apply_plan(p, live, want))
    assert files.mode_of(str(plain)) == 0o600  # the file's own wrong mode was set
    assert files.mode_of(str(victim)) == 0o640  # the link's target kept its mode


def test_sshd_silent_after_the_reload_fails_the_apply_naming_where(monkeypatch):
    """The executor runs this check after the reload; its HostError restores like a failed operation."""
    monkeypatch.setattr(waits, "listener", lambda targets, banner, timeout: False)
    with pytest.raises(
        files.HostError, match=r"sshd did not answer on 10\.0\.0\.1:22 within 10 s of the reload"
    ):
        sshd_config.wait_for_sshd([("10.0.0.1", 22)])
