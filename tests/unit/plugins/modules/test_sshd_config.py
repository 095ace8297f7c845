"""The module's host-side helpers that do not need a host: the rollback script and the drop-in order check."""

import os
import socket
import subprocess
import threading

from ansible_collections.bulwark.hardening.plugins.modules import sshd_config


def run_restore(tmp_path, dropin_existed):
    backup = tmp_path / "backup"
    backup.mkdir()
    etc = tmp_path / "etc"
    (etc / "sshd_config.d").mkdir(parents=True)
    main, dropin = etc / "sshd_config", etc / "sshd_config.d" / "00-bulwark.conf"
    (backup / "main_config").write_text("Include old\n")
    if dropin_existed:
        (backup / "dropin").write_text("PasswordAuthentication yes\n")
    else:
        (backup / "dropin.absent").touch()
    main.write_text("Include new\n")
    dropin.write_text("PasswordAuthentication no\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    script = sshd_config.restore_script(str(backup), str(main), str(dropin), "ssh")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    subprocess.run(["/bin/sh", "-c", script], check=True, env=env)
    return main, dropin, backup, log


def test_restore_script_puts_back_the_previous_files_and_reloads(tmp_path):
    main, dropin, backup, log = run_restore(tmp_path, dropin_existed=True)
    assert main.read_text() == "Include old\n"
    assert dropin.read_text() == "PasswordAuthentication yes\n"
    assert (backup / "rolled-back").exists()
    assert log.read_text() == "reload ssh\n"


def test_restore_script_removes_a_dropin_that_did_not_exist(tmp_path):
    main, dropin, _unused, _unused = run_restore(tmp_path, dropin_existed=False)
    assert main.read_text() == "Include old\n"
    assert not dropin.exists()


def test_dropins_read_earlier_that_set_our_keywords_are_reported(tmp_path):
    (tmp_path / "00-aaa.conf").write_text("passwordauthentication yes\n# PermitRootLogin yes\n")
    (tmp_path / "50-cloud-init.conf").write_text("PasswordAuthentication yes\n")
    warnings = sshd_config.other_dropins_first(
        str(tmp_path), "00-bulwark.conf", {"PasswordAuthentication": False, "PermitRootLogin": "no"}
    )
    assert warnings == [
        f"{tmp_path}/00-aaa.conf is read before 00-bulwark.conf"
        " and sets passwordauthentication: its values win"
    ]


def test_listeners_reach_wildcards_through_loopback():
    assert sshd_config.listeners(["[::]:22", "0.0.0.0:22", "192.0.2.5:2222"]) == [
        ("::1", 22),
        ("127.0.0.1", 22),
        ("192.0.2.5", 2222),
    ]


def test_wait_for_listener_sees_an_ssh_banner_and_gives_up_without_one():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer():
        conn, _unused = server.accept()
        conn.sendall(b"SSH-2.0-test\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    assert sshd_config.wait_for_listener([("::1", 9), ("127.0.0.1", port)], timeout=5)
    server.close()
    assert not sshd_config.wait_for_listener([("127.0.0.1", port)], timeout=0.5)
