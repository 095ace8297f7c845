"""The module's own host-side helper that needs no host: waiting for sshd's banner after a reload."""

import socket
import threading

from ansible_collections.bulwark.hardening.plugins.modules import sshd_config


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
