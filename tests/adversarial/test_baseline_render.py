"""The bootstrap templates and the sysctl.d file against what reads them: every variable value that the
pure checks (baseline/settings.py, sysctl/baseline.py; validate_input runs them) accept is read back as
exactly that value, one word in its place; every other is refused naming the variable.

Readers: apt-config (apt's own parser) for the unattended-upgrades file; /bin/sh for the profile script;
for modprobe.d, chrony, timesyncd and sysctl.d (kmod, chrony and a safe systemd-sysctl are not on the test
machine) their documented line syntax: blank-separated words, "key = value".
"""

import subprocess
from pathlib import Path

import jinja2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline.settings import (
    SettingsError,
    validate,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.sysctl import baseline as sysctl

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "bootstrap" / "templates"
SPECIAL = [*" \"'\\#;=%$`|&()<>*?,:/{}\t\n\r\x00\x0b\x7f", "é", "\u2028"]
TEXT = st.text(st.sampled_from(SPECIAL) | st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def render(template, **variables):
    # Not HTML: the templates are configuration files, rendered as Ansible renders them (no escaping).
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701
    env.filters["ternary"] = lambda value, yes, no: yes if value else no
    return env.from_string((TEMPLATES / template).read_text()).render(ansible_managed="managed", **variables)


def accepted(name, value):
    try:
        validate({name: value})
    except SettingsError as exc:
        assert str(exc).startswith(name), str(exc)
        return False
    return True


def apt_entries(path):
    """apt's whole configuration with the file read (what the file adds: its keys, nothing else)."""
    done = subprocess.run(["apt-config", "-c", str(path), "dump"], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.split("\n") if not line.startswith("CommandLine::")]


@SETTINGS
@given(value=TEXT)
@example(value='03:30"; DPkg::Post-Invoke {"touch /tmp/x";}; x "')
@example(value='03:30\nDPkg::Post-Invoke {"id";};')
@example(value="now")
@example(value="24:00")
def test_the_reboot_time_is_one_apt_string(tmp_path, value):
    if not accepted("bootstrap_unattended_upgrades_reboot_time", value):
        return
    path = tmp_path / "52bulwark"
    path.write_text(
        render(
            "unattended-upgrades.conf.j2",
            bootstrap_unattended_upgrades_reboot=True,
            bootstrap_unattended_upgrades_reboot_time=value,
        )
    )
    reference = tmp_path / "reference"
    reference.write_text(
        render(
            "unattended-upgrades.conf.j2",
            bootstrap_unattended_upgrades_reboot=True,
            bootstrap_unattended_upgrades_reboot_time="03:30",
        )
    )
    expected = [
        f'Unattended-Upgrade::Automatic-Reboot-Time "{value}";' if "Reboot-Time" in line else line
        for line in apt_entries(reference)
    ]
    assert apt_entries(path) == expected


@SETTINGS
@given(value=TEXT)
@example(value="027; touch /tmp/x")
@example(value="$(touch /tmp/x)")
@example(value="0027")
@example(value="077")
def test_the_umask_is_one_shell_word(tmp_path, value):
    if not accepted("bootstrap_umask", value):
        return
    script = tmp_path / "profile.sh"
    script.write_text(
        render(
            "profile.sh.j2",
            bootstrap_umask_enabled=True,
            bootstrap_umask=value,
            bootstrap_coredumps_disabled=False,
            bootstrap_shell_timeout=0,
        )
    )
    done = subprocess.run(
        ["sh", "-c", f". {script}; umask"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{int(value, 8):04o}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.sh"]


@SETTINGS
@given(modules=st.lists(TEXT, min_size=1, max_size=3))
@example(modules=["dccp /bin/sh -c 'touch /tmp/x' #"])
@example(modules=["usb-storage", "firewire_core"])
def test_blacklisted_modules_are_one_word_each(modules):
    if not accepted("bootstrap_modules_blacklist", modules):
        return
    lines = [
        line.split()
        for line in render("modprobe-blacklist.conf.j2", bootstrap_modules_blacklist=modules).split("\n")[1:]
        if line
    ]
    expected = []
    for module in modules:
        expected += [["blacklist", module], ["install", module, "/bin/false"]]
    assert lines == expected


@SETTINGS
@given(servers=st.lists(TEXT, min_size=1, max_size=3))
@example(servers=["pool.ntp.org iburst key 1"])
@example(servers=["0.debian.pool.ntp.org", "2001:db8::1"])
def test_time_servers_are_one_word_each(servers):
    if not accepted("bootstrap_time_servers", servers):
        return
    chrony = [
        line.split()
        for line in render("chrony.sources.j2", bootstrap_time_servers=servers).split("\n")[1:]
        if line
    ]
    assert chrony == [["server", server, "iburst"] for server in servers]
    (ntp,) = [
        line
        for line in render("timesyncd.conf.j2", bootstrap_time_servers=servers).split("\n")
        if line.startswith("NTP=")
    ]
    assert ntp.removeprefix("NTP=").split() == servers


@SETTINGS
@given(key=TEXT, value=st.one_of(TEXT, st.integers(min_value=0, max_value=10**6)))
@example(key="UMASK", value="027 #")
@example(key="USERGROUPS_ENAB", value="yes\nUMASK 000")
@example(key="HOME_MODE", value="0750")
def test_login_defs_settings_are_a_name_and_one_word(key, value):
    try:
        validate({"bootstrap_login_defs": {key: value}})
    except SettingsError as exc:
        assert str(exc).startswith("bootstrap_login_defs"), str(exc)
        return
    assert f"{key} {value}".split() == [key, str(value)]


@SETTINGS
@given(key=st.one_of(TEXT, st.just("net.ipv4.ip_forward")), value=st.one_of(TEXT, st.integers()))
@example(key="kernel.sysrq", value="0\nkernel.modules_disabled = 1")
@example(key="kernel.sysrq\n-kernel.x", value=0)
@example(key="net.ipv4.conf.all.rp_filter", value="1 # comment")
def test_sysctl_lines_are_one_key_and_its_value(key, value):
    try:
        settings_ = sysctl.validate({key: value})
    except sysctl.SysctlSpecError as exc:
        assert "settings" in str(exc), str(exc)
        return
    lines = sysctl.render(settings_).split("\n")[1:-1]
    assert len(lines) == 1
    # systemd-sysctl: a line is "key = value", the key and the value stripped (sysctl.d(5)).
    found_key, found_value = (part.strip() for part in lines[0].split("=", 1))
    assert (found_key, found_value) == (key, sysctl.normalise(value))
