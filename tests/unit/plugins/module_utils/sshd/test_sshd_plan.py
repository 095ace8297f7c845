"""The sshd_config plan: options checked, the connection, account facts, diff, listeners, and the restore
steps run for real by the commit-confirm restore script (only systemctl is faked)."""

import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.host.origin import Origin
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import plan
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.effective import parse

FIXTURES = Path(__file__).parent / "fixtures"
PARAMS = {
    "rsa_host_key_bits": 0,
    "remove_host_keys": [],
    "moduli_min_bits": 0,
    "rollback_timeout": 60,
    "path": "/etc/ssh/sshd_config.d/00-bulwark.conf",
    "main_config": "/etc/ssh/sshd_config",
    "backup_dir": "/var/lib/bulwark/sshd",
    "service": "ssh",
    "connecting_user": None,
    "connecting_from": None,
    "local_address": None,
    "local_port": None,
    "mode": "0600",
}


def test_sound_params_give_the_mode():
    assert plan.check_params(PARAMS) == 0o600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rollback_timeout": 0}, "rollback_timeout: 0 is below 5 seconds"),
        ({"rollback_timeout": 4}, "rollback_timeout: 4 is below 5 seconds"),
        (
            {"path": "/etc/ssh/sshd_config.d/00-bulwark.conf\n"},
            "path: '/etc/ssh/sshd_config.d/00-bulwark.conf\\\\n'",
        ),
        ({"path": "/etc/ssh/my dir/00.conf"}, "path: .* must be a plain absolute path"),
        ({"path": '/etc/ssh/x"y/00.conf'}, "path: .* must be a plain absolute path"),
        ({"main_config": "/etc/ssh/sshd_config#x"}, "main_config: .* must be a plain absolute path"),
        ({"backup_dir": "/var/lib/bulwark/sshd;reboot"}, "backup_dir: .* must be a plain absolute path"),
        ({"backup_dir": "/var/lib/bulwark/../../etc"}, "backup_dir: .* must be a plain absolute path"),
        ({"path": "/etc/ssh/sshd_config.d/00-bulwark"}, "ending in .conf"),
        ({"main_config": "/etc/ssh/sshd_config\nPermitRootLogin yes"}, "main_config: "),
        ({"service": "ssh; reboot"}, "service: 'ssh; reboot' is not a systemd unit name"),
        (
            {"connecting_user": "deploy,addr=10.0.0.1"},
            "connecting_user: 'deploy,addr=10.0.0.1' is not a user",
        ),
        ({"connecting_from": "10.0.0.300"}, "connecting_from: '10.0.0.300' is not an IP address"),
        ({"local_address": "10.0.0.1\n"}, "local_address: '10.0.0.1\\\\n' is not an IP address"),
        ({"local_port": 70000}, "local_port: 70000 is not a port"),
        ({"mode": "0666"}, "mode: '0666' is not an octal mode"),
        ({"rsa_host_key_bits": 1024}, "rsa_host_key_bits must be 0 or between"),
        ({"rsa_host_key_bits": 4096, "remove_host_keys": ["rsa"]}, "contradict"),
        ({"moduli_min_bits": 512}, "moduli_min_bits must be 0 or between"),
    ],
)
def test_bad_params_are_named(change, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.check_params({**PARAMS, **change})


def test_candidate_renders_the_dropin_and_puts_the_include_first():
    dropin, main = plan.candidate({"PermitRootLogin": False}, [], "UsePAM yes\n", PARAMS["path"])
    assert dropin.endswith("PermitRootLogin no\n")
    assert main == "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n"
    with pytest.raises(plan.PlanError, match="unknown sshd keyword: 'Bogus'"):
        plan.candidate({"Bogus": 1}, [], "", PARAMS["path"])


ORIGIN = Origin("deploy", "172.30.1.1", 50000, "172.30.1.11", 22)


def test_connection_from_options_first_then_the_ssh_login():
    conn = plan.connection(PARAMS, ORIGIN, "root")
    assert conn == {
        "user": "deploy",
        "addr": "172.30.1.1",
        "laddr": "172.30.1.11",
        "lport": 22,
        "missing": [],
    }
    given = {**PARAMS, "connecting_user": "ops", "local_address": "10.0.0.1", "local_port": 2222}
    conn = plan.connection(given, ORIGIN, "root")
    assert (conn["user"], conn["laddr"], conn["lport"]) == ("ops", "10.0.0.1", 2222)
    assert plan.check_spec(conn) == "user=ops,host=172.30.1.1,addr=172.30.1.1,laddr=10.0.0.1,lport=2222"


def test_connection_without_an_ssh_login_names_what_is_missing():
    conn = plan.connection({**PARAMS, "local_port": 22}, None, "root")
    assert conn["user"] == "root"
    assert conn["missing"] == ["connecting_from", "local_address"]
    assert plan.check_spec(conn) == "user=root,host=127.0.0.1,addr=127.0.0.1,laddr=127.0.0.1,lport=22"


SHADOW = (
    "root:*:19000:0:99999:7:::\n"
    "deploy:!$y$j9T$salt$hash:20000:0:99999:7:::\n"
    "ops:$y$j9T$salt$hash:20000:0:99999:7:::\n"
    "svc:*:20000:0:99999:7:::\n"
    "nopw::20000:0:99999:7:::\n"
)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("deploy", {"has_password": False, "password_locked": True}),
        ("ops", {"has_password": True, "password_locked": False}),
        ("svc", {"has_password": False, "password_locked": False}),
        ("nopw", {"has_password": False, "password_locked": False}),
        ("ldapuser", {"has_password": False, "password_locked": None}),
    ],
)
def test_account_reads_the_lock_from_shadow(user, expected):
    assert plan.account(SHADOW, user) == expected


def test_authorized_keys_paths_and_key_types():
    paths = plan.authorized_keys_paths(
        [".ssh/authorized_keys", "/etc/ssh/keys/%u", "%h/k%%", "none"], "deploy", "/home/deploy", 1000
    )
    assert paths == ["/home/deploy/.ssh/authorized_keys", "/etc/ssh/keys/deploy", "/home/deploy/k%"]
    text = '# c\n\nssh-ed25519 AAAA a\nfrom="10.0.0.0/8",no-pty ecdsa-sha2-nistp256 AAAA b\nbogus\n'
    assert plan.key_types(text) == ["ssh-ed25519", "ecdsa-sha2-nistp256"]
    assert plan.key_types(None) == []


def test_host_key_types_follow_removal_and_regeneration():
    rsa, ecdsa, ed = (plan.HOST_KEY.format(k) for k in ("rsa", "ecdsa", "ed25519"))
    public = {rsa: "ssh-rsa AAAA root@h\n", ecdsa: "ecdsa-sha2-nistp256 AAAA\n", ed: None}
    assert plan.host_key_types([rsa, ecdsa, ed], public, [ecdsa], False) == ["ssh-rsa"]
    assert plan.host_key_types([rsa], {rsa: None}, [], True) == ["ssh-rsa"]


def test_dropins_read_earlier_that_set_our_keywords_are_reported():
    dropins = [
        ("/d/50-cloud-init.conf", "PasswordAuthentication yes\n"),
        ("/d/00-aaa.conf", "passwordauthentication yes\n# PermitRootLogin yes\n"),
    ]
    assert plan.other_dropins_first(
        dropins, "00-bulwark.conf", {"PasswordAuthentication": False, "PermitRootLogin": "no"}
    ) == ["/d/00-aaa.conf is read before 00-bulwark.conf and sets passwordauthentication: its values win"]


def test_moduli_summary_and_refusal():
    text = "# c\n2 3 4 5 2047 2 X\n2 3 4 5 3071 2 Y\n"
    assert plan.moduli(text, 3072) == (
        "# c\n2 3 4 5 3071 2 Y\n",
        ("2 moduli\n", "1 moduli of at least 3072 bits (1 removed)\n"),
    )
    assert plan.moduli(text, 0) == (None, None)
    assert plan.moduli("2 3 4 5 3071 2 Y\n", 3072) == (None, None)
    with pytest.raises(plan.PlanError, match="would remove every modulus"):
        plan.moduli(text, 8192)


def test_diff_lists_only_what_changes():
    keys = plan.host_keys_summary(3072, 4096, ["/etc/ssh/ssh_host_ecdsa_key"])
    entries = plan.diff(
        [("/d/00.conf", None, "A\n"), ("/etc/ssh/sshd_config", "B\n", "B\n")],
        None,
        keys,
        [("/etc/ssh/sshd_config", 0o644)],
        0o600,
    )
    assert [e["before_header"] for e in entries] == ["/d/00.conf", "host keys", "permissions"]
    assert entries[0]["before"] == "" and entries[0]["after"] == "A\n"
    assert entries[1]["after"] == (
        "/etc/ssh/ssh_host_ecdsa_key removed\n/etc/ssh/ssh_host_rsa_key: RSA 4096 bits (regenerated)\n"
    )
    assert entries[2] == {
        "before_header": "permissions",
        "after_header": "permissions",
        "before": "/etc/ssh/sshd_config 0644\n",
        "after": "/etc/ssh/sshd_config 0600\n",
    }
    assert plan.diff([("/x", "A\n", "A\n")], None, plan.host_keys_summary(0, 0, []), [], 0o600) == []


def test_wait_targets_are_the_controllers_listener_when_served_else_every_listener():
    eff = parse((FIXTURES / "sshd_T_debian13_both_ports.txt").read_text())
    assert plan.wait_targets(eff, "172.30.1.11", 2222) == [("172.30.1.11", 2222)]
    assert plan.wait_targets(eff, "172.30.1.11", 2200) == [
        ("::1", 22), ("127.0.0.1", 22), ("::1", 2222), ("127.0.0.1", 2222)
    ]  # fmt: skip
    assert plan.wait_targets(eff, None, None)[0] == ("::1", 22)


def run_restore(tmp_path, dropin_existed):
    """The restore steps as the host's timer would run them, in a tree under tmp_path."""
    etc, backup, state = tmp_path / "etc", tmp_path / "backup", tmp_path / "cc"
    (etc / "sshd_config.d").mkdir(parents=True)
    backup.mkdir()
    state.mkdir()
    main, dropin = etc / "sshd_config", etc / "sshd_config.d" / "00-bulwark.conf"
    (backup / "sshd_config").write_text("Include old\n")
    (backup / "sshd_config").chmod(0o644)
    if dropin_existed:
        (backup / "dropin").write_text("PasswordAuthentication yes\n")
    main.write_text("Include new\n")
    dropin.write_text("AllowUsers somebody-else\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "systemctl").chmod(0o755)
    steps = plan.restore_steps(
        str(main),
        str(dropin),
        backup_dir=str(backup),
        dropin_existed=dropin_existed,
        service="ssh",
        reload=True,
    )
    script = state / "restore.sh"
    script.write_text(commit_confirm.render_restore(str(state), steps))
    (state / "armed").write_text("now\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return main, dropin, state, log


def test_restore_puts_back_the_previous_files_and_reloads(tmp_path):
    main, dropin, state, log = run_restore(tmp_path, dropin_existed=True)
    assert main.read_text() == "Include old\n"
    assert oct(main.stat().st_mode & 0o777) == "0o644"  # the previous mode too
    assert dropin.read_text() == "PasswordAuthentication yes\n"
    assert (state / "rolled-back").exists() and not (state / "armed").exists()
    assert log.read_text() == "try-reload-or-restart ssh\n"
    assert sorted(p.name for p in main.parent.iterdir()) == ["sshd_config", "sshd_config.d"]  # no temp left


def test_restore_removes_a_dropin_that_did_not_exist(tmp_path):
    main, dropin, _state, _log = run_restore(tmp_path, dropin_existed=False)
    assert main.read_text() == "Include old\n"
    assert not dropin.exists()


def test_restore_replaces_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    etc = tmp_path / "etc"
    (etc / "sshd_config.d").mkdir(parents=True)
    (etc / "sshd_config").symlink_to(victim)
    steps = plan.restore_steps(
        str(etc / "sshd_config"), str(etc / "sshd_config.d" / "x.conf"),
        backup_dir=str(tmp_path), dropin_existed=False, service="ssh", reload=False,
    )  # fmt: skip
    (tmp_path / "sshd_config").write_text("Include old\n")
    for _what, argv in steps:
        subprocess.run(argv, check=True)
    assert victim.read_text() == "untouched\n"
    assert (etc / "sshd_config").read_text() == "Include old\n" and not (etc / "sshd_config").is_symlink()


def test_restore_without_reload_has_no_systemctl_step():
    steps = plan.restore_steps(
        "/m", "/d/x.conf", backup_dir="/b", dropin_existed=True, service="ssh", reload=False
    )
    assert [what for what, _argv in steps] == [
        "copy back /m",
        "put back /m",
        "copy back /d/x.conf",
        "put back /d/x.conf",
    ]


def test_sshd_t_messages_quote_the_candidate_line_they_mean():
    dropin = "# Managed\nPermitRootLogin no\nMaxAuthTries lots\n"
    message = "/etc/ssh/sshd_config.d/00-bulwark.conf line 3: Badly formatted number 'lots'."
    assert plan.quote_lines(message, "/etc/ssh/sshd_config.d/00-bulwark.conf", dropin) == (
        "/etc/ssh/sshd_config.d/00-bulwark.conf line 3 ('MaxAuthTries lots'): Badly formatted number 'lots'."
    )
    # Another file's line, or a line the candidate does not have, is left as sshd wrote it.
    other = "/etc/ssh/sshd_config line 3: Bad yes/no argument: maybe"
    assert plan.quote_lines(other, "/etc/ssh/sshd_config.d/00-bulwark.conf", dropin) == other
    beyond = "/etc/ssh/sshd_config.d/00-bulwark.conf line 40: oops"
    assert plan.quote_lines(beyond, "/etc/ssh/sshd_config.d/00-bulwark.conf", dropin) == beyond
