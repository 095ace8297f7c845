from ansible_collections.bulwark.hardening.plugins.module_utils.host import origin


def test_parse_ssh_connection_unmaps_ipv4_and_keeps_both_ends():
    got = origin.parse_ssh_connection("::ffff:172.30.1.1 50122 ::ffff:172.30.1.11 2222", "deploy")
    assert got == origin.Origin("deploy", "172.30.1.1", 50122, "172.30.1.11", 2222)


def test_parse_ssh_connection_strips_the_scope_of_a_link_local_address():
    got = origin.parse_ssh_connection("fe80::1%eth0 40000 fe80::2%eth0 22")
    assert (got.address, got.local_address) == ("fe80::1", "fe80::2")


def test_parse_ssh_connection_refuses_what_it_cannot_read():
    assert origin.parse_ssh_connection("") is None
    assert origin.parse_ssh_connection("10.0.0.1 22 10.0.0.2") is None
    assert origin.parse_ssh_connection("host 1 10.0.0.2 22") is None


def _process(proc, pid, ppid, env):
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(f"{pid} (sh) S {ppid} 0 0\n")
    (proc / str(pid) / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))


def test_ssh_origin_reads_the_login_shell_a_few_processes_up(tmp_path):
    # module (under sudo, no SSH_CONNECTION) <- sudo <- login shell of deploy
    _process(tmp_path, 300, 200, {"USER": "root"})
    _process(tmp_path, 200, 100, {"SUDO_USER": "deploy"})
    _process(tmp_path, 100, 1, {"USER": "deploy", "SSH_CONNECTION": "192.0.2.9 41000 192.0.2.1 22"})
    got = origin.ssh_origin(proc=str(tmp_path), pid=300)
    assert got == origin.Origin("deploy", "192.0.2.9", 41000, "192.0.2.1", 22)


def test_ssh_origin_is_none_without_an_ssh_login(tmp_path):
    _process(tmp_path, 300, 1, {"USER": "root"})
    assert origin.ssh_origin(proc=str(tmp_path), pid=300) is None
