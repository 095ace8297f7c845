import errno

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sysctl import baseline as b

MOUNTINFO = """\
488 487 0:167 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
397 488 0:167 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
401 397 0:167 /sys/net /proc/sys/net rw,nosuid,nodev,noexec,relatime - proc proc rw
"""


def test_validate_sorts_and_normalises():
    result = b.validate(
        {"kernel.sysrq": 0, "fs.suid_dumpable": "0", "net.ipv4.ip_local_port_range": "1024\t 65000"}
    )
    assert list(result) == ["fs.suid_dumpable", "kernel.sysrq", "net.ipv4.ip_local_port_range"]
    assert result["net.ipv4.ip_local_port_range"] == "1024 65000"
    assert result["kernel.sysrq"] == "0"
    assert b.validate({"kernel.sysrq": True}) == {"kernel.sysrq": "1"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"nodots": 1}, "'nodots' is not a sysctl key"),
        ({"kernel.sysrq; rm": 1}, "is not a sysctl key"),
        ({"kernel.sysrq": None}, r"settings\.kernel\.sysrq"),
        ({"kernel.sysrq": [1]}, r"settings\.kernel\.sysrq"),
        ({"kernel.sysrq": "  "}, "non-empty"),
        ({"kernel.sysrq": "1\n2"}, "single line"),
        ({"kernel.sysrq": "1\x1b[2J"}, "without control characters"),
        # fullmatch: a trailing line break would start a second line of the file.
        ({"kernel.sysrq\n": 1}, "is not a sysctl key"),
    ],
)
def test_validate_names_the_bad_key(settings, message):
    with pytest.raises(b.SysctlSpecError, match=message):
        b.validate(settings)


def test_render_and_proc_path():
    text = b.render(b.validate({"net.ipv4.tcp_syncookies": 1, "fs.protected_fifos": 2}))
    assert text == b.HEADER + "fs.protected_fifos = 2\nnet.ipv4.tcp_syncookies = 1\n"
    assert b.proc_path("net.ipv4.conf.all.rp_filter") == "/proc/sys/net/ipv4/conf/all/rp_filter"


def test_readonly_detection_uses_the_deepest_mount():
    readonly, points = b.readonly_mounts(MOUNTINFO)
    assert b.is_readonly("/proc/sys/kernel/dmesg_restrict", readonly, points)
    assert not b.is_readonly("/proc/sys/net/ipv4/conf/all/rp_filter", readonly, points)
    assert not b.is_readonly("/proc/self/status", readonly, points)


def test_plan_splits_apply_unchanged_and_skipped():
    readonly, points = b.readonly_mounts(MOUNTINFO)
    settings = b.validate(
        {
            "net.ipv4.conf.all.rp_filter": 1,
            "kernel.dmesg_restrict": 1,
            "kernel.kptr_restrict": 2,
            "kernel.yama.ptrace_scope": 1,
            "net.ipv4.ip_local_port_range": "1024 65000",
        }
    )
    live = {
        "net.ipv4.conf.all.rp_filter": "0",
        "kernel.dmesg_restrict": "1",
        "kernel.kptr_restrict": "0",
        "kernel.yama.ptrace_scope": None,
        "net.ipv4.ip_local_port_range": "1024\t65000",
    }
    optional = b.validate_optional(["kernel.yama.ptrace_scope"])
    to_apply, unchanged, skipped = b.plan(settings, live, readonly, points, optional)
    assert to_apply == ["net.ipv4.conf.all.rp_filter"]
    assert sorted(unchanged) == ["kernel.dmesg_restrict", "net.ipv4.ip_local_port_range"]
    assert skipped == {
        "kernel.kptr_restrict": b.REASONS[errno.EROFS],
        "kernel.yama.ptrace_scope": "not present in this kernel (declared optional)",
    }


def test_a_key_the_kernel_does_not_know_fails_naming_it_unless_optional():
    settings = b.validate({"kernel.sysrq": 0, "kernel.sysrk": 0, "net.ipv4.tcp_syncookie": 1})
    live = {"kernel.sysrq": "0", "kernel.sysrk": None, "net.ipv4.tcp_syncookie": None}
    with pytest.raises(b.UnknownKeysError) as raised:
        b.plan(settings, live, optional=b.validate_optional(["kernel.yama.ptrace_scope"]))
    assert raised.value.keys == ["kernel.sysrk", "net.ipv4.tcp_syncookie"]
    assert str(raised.value) == (
        "the kernel does not know settings.kernel.sysrk, settings.net.ipv4.tcp_syncookie "
        "(a typo? a key that may be absent belongs in optional_keys)"
    )


def test_optional_keys_are_marked_in_the_file_so_systemd_sysctl_ignores_them_too():
    settings = b.validate({"kernel.yama.ptrace_scope": 1, "kernel.sysrq": 0})
    text = b.render(settings, b.validate_optional(["kernel.yama.ptrace_scope"]))
    assert text == b.HEADER + "kernel.sysrq = 0\n-kernel.yama.ptrace_scope = 1\n"


@pytest.mark.parametrize(
    ("keys", "message"),
    [("kernel.sysrq", "must be a list"), (["kernel.sysrq", "x y"], r"optional_keys\[1\]: 'x y'")],
)
def test_optional_keys_are_validated(keys, message):
    with pytest.raises(b.SysctlSpecError, match=message):
        b.validate_optional(keys)


@pytest.mark.parametrize(
    "path", ["/etc/sysctl.d/90-bulwark", "etc/x.conf", "/etc/sysctl.d/a b.conf", "/etc/../x.conf"]
)
def test_path_must_be_a_plain_conf_file(path):
    with pytest.raises(b.SysctlSpecError, match=r"^path: "):
        b.validate_path(path)


def test_plan_on_a_writable_host_applies_everything_that_differs():
    settings = b.validate({"kernel.sysrq": 0, "fs.suid_dumpable": 0})
    to_apply, unchanged, skipped = b.plan(settings, {"kernel.sysrq": "176", "fs.suid_dumpable": "0"})
    assert to_apply == ["kernel.sysrq"]
    assert unchanged == ["fs.suid_dumpable"]
    assert skipped == {}


def test_reasons_for_write_errors():
    assert "read-only" in b.reason(errno.EROFS)
    assert b.reason(errno.EPERM)
    assert b.reason(errno.EINVAL) is None
