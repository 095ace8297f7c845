"""sshd/decide.py: what sshd_config decides from what it read, tested as data (no host)."""

from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host.accounts import Group
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import decide, effective

FIXTURES = Path(__file__).parent / "fixtures"
EFF = effective.parse((FIXTURES / "sshd_T_debian12_default.txt").read_text())
CONN = {"user": "deploy", "addr": "192.0.2.10", "laddr": "192.0.2.1", "lport": 22, "missing": []}
PARAMS = {
    "path": "/etc/ssh/sshd_config.d/00-bulwark.conf",
    "main_config": "/etc/ssh/sshd_config",
    "options": {"PermitRootLogin": False},
    "match": [],
    "guard": True,
    "rsa_host_key_bits": 0,
    "moduli_min_bits": 0,
}
MAIN = "Include /etc/ssh/sshd_config.d/*.conf\n"


def live(**changes):
    found = {
        "main": MAIN,
        "dropin": "PermitRootLogin no\n",
        "others": [],
        "moduli": None,
        "remove": [],
        "rsa_bits": 0,
        "modes": {PARAMS["main_config"]: 0o600, PARAMS["path"]: 0o600},
    }
    found.update(changes)
    return found


def outcome(p=None, found=None, refusals=(), dropin="PermitRootLogin no\n"):
    return decide.outcome(
        p or PARAMS,
        found or live(),
        EFF,
        CONN,
        candidate=(dropin, MAIN),
        mode=0o600,
        refusals=list(refusals),
        warnings=[],
        tools={"sshd": "/usr/sbin/sshd", "keygen": "/usr/bin/ssh-keygen"},
    )


def test_only_other_conf_files_of_the_directory_are_read():
    names = ["00-bulwark.conf", "50-cloud-init.conf", "README", "60-x.conf.dpkg-old", "10-a.conf"]
    assert decide.other_dropins(names, "00-bulwark.conf") == ["50-cloud-init.conf", "10-a.conf"]


@pytest.mark.parametrize(
    ("rc", "out", "bits"),
    [(0, "3072 SHA256:abc root@host (RSA)\n", 3072), (1, "3072 x", 0), (0, "", 0), (0, "no key", 0)],
)
def test_key_bits_reads_ssh_keygen_lf(rc, out, bits):
    assert decide.key_bits(rc, out) == bits


def test_messages_name_the_live_files_not_the_sandbox_copies():
    renames = {
        "/sandbox/bulwark-sshd-x/sshd_config.d": "/etc/ssh/sshd_config.d",
        "/sandbox/bulwark-sshd-x/sshd_config": "/etc/ssh/sshd_config",
    }
    text = "  /sandbox/bulwark-sshd-x/sshd_config.d/00-bulwark.conf line 3: bad\n"
    assert decide.untemp(text, renames) == "/etc/ssh/sshd_config.d/00-bulwark.conf line 3: bad"
    assert decide.untemp(None, renames) == ""


def test_the_strict_modes_chain_entry_carries_the_group_only_where_it_is_group_writable():
    assert decide.strict_modes_entry("/home/a", None, None) == {"path": "/home/a", "kind": None}
    plain = decide.strict_modes_entry("/home/a", ("directory", 0o755, 1000, 1000), "alice")
    assert plain == {
        "path": "/home/a",
        "kind": "directory",
        "mode": 0o755,
        "uid": 1000,
        "gid": 1000,
        "owner": "alice",
    }
    shared = decide.strict_modes_entry(
        "/home/a", ("directory", 0o775, 1000, 100), "alice", Group("users", 100, ["bob"]), [1000]
    )
    assert shared["group"] == {"name": "users", "primary": [1000], "members": ["bob"]}
    unnamed = decide.strict_modes_entry("/home/a", ("directory", 0o775, 1000, 4242), None)
    assert unnamed["group"] is None and unnamed["owner"] is None


def test_an_unknown_connection_is_refused_with_the_guard_and_warned_without():
    conn = {**CONN, "laddr": None, "lport": None, "missing": ["local_address", "local_port"]}
    with pytest.raises(decide.Failed) as refused:
        decide.unknown_connection(conn, True)
    assert str(refused.value).endswith("Nothing was applied")
    assert refused.value.result["refusals"] == ["local_address, local_port unknown"]
    assert decide.unknown_connection(conn, False) == [
        "local_address, local_port unknown: the candidate was evaluated as "
        "user=deploy,host=192.0.2.10,addr=192.0.2.10,laddr=127.0.0.1,lport=22"
    ]
    assert decide.unknown_connection(CONN, True) == []


def test_the_guard_refuses_by_name_and_nothing_is_applied():
    with pytest.raises(decide.Failed) as refused:
        outcome(refusals=["PermitRootLogin no locks out root"])
    assert "would lock out deploy: PermitRootLogin no locks out root. Nothing was applied" in str(
        refused.value
    )
    assert refused.value.result["effective"] == EFF.as_dict()
    result, _want = outcome(p={**PARAMS, "guard": False}, refusals=["r"])
    assert result["warnings"] == ["guard disabled; it would have refused: r"]


def test_no_change_is_an_empty_diff_and_a_change_is_applied_as_rendered():
    result, want = outcome()
    assert result["changed"] is False and result["diff"] == []
    assert want["wrong_modes"] == [] and want["regenerate_rsa"] is False and want["moduli"] is None
    result, want = outcome(dropin="PermitRootLogin no\nX11Forwarding no\n")
    assert result["changed"] is True and want["dropin"].endswith("X11Forwarding no\n")
    assert want["targets"] and want["sshd"] == "/usr/sbin/sshd"


def test_a_wrong_mode_and_a_short_rsa_key_are_changes():
    found = live(modes={PARAMS["main_config"]: 0o644, PARAMS["path"]: 0o600}, rsa_bits=3072)
    result, want = outcome(p={**PARAMS, "rsa_host_key_bits": 4096}, found=found)
    assert want["wrong_modes"] == [(PARAMS["main_config"], 0o644)]
    assert want["regenerate_rsa"] is True
    assert result["host_keys"] == {"removed": [], "rsa_bits_before": 3072, "rsa_bits_after": 4096}
    assert result["changed"] is True


def test_check_mode_reports_a_pending_change_and_what_settle_would_finish():
    class Settled:
        notes, rolled_back, changed = ["a note"], "2026-01-01T00:00:00Z", False

    result = decide.predicted({"changed": False, "warnings": []}, Settled(), pending=True)
    assert result["changed"] is True and result["pending"] is True
    assert result["warnings"] == [
        "a note",
        "an earlier unconfirmed sshd change was rolled back by the host (2026-01-01T00:00:00Z)",
    ]


def test_a_bare_host_in_check_mode_is_predicted_with_a_warning():
    result = decide.predicted_install(PARAMS, 0o600)
    assert result["changed"] is True and result["diff"][0]["after"].startswith("# ")
    assert result["warnings"] == ["sshd is not installed yet: the drop-in was rendered but not validated"]
