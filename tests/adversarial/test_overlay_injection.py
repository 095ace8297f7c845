"""The overlay attacked through its input: values that would run a command when wg-quick brings the interface
up (its PostUp and PreDown lines go through bash's eval), add a line or a key to wg0.conf, or name a file
outside /etc/wireguard for state=absent to remove. Each is refused on the controller (validate_input's
pure check) and by the module on the host, in every state; what is accepted renders a file that wg-quick's
own parser reads as intended, and whose hooks run exactly the intended commands.

wg-quick is the real one: `wg-quick strip`, and its own parse_options and execute_hooks (sourced from
/usr/bin/wg-quick) run each hook with stand-ins for wg and iptables that record their arguments.
"""

import base64
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.action import validate_input
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh, psk, wgconf

KEY_B = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
KEY_C = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
WG = "/etc/wireguard"
PWNED = f"{WG}/pwned"
# Absolute and under the private /etc/wireguard: the old code made these directories, so a payload must not
# name a place outside the test's private copy.
HOST_PAYLOADS = [
    f"{WG}/k;touch {PWNED};#",  # wg-quick cuts the line at "#": the rest of PostUp is the attacker's
    f"{WG}/$(touch {PWNED})",
    f"{WG}/`touch {PWNED}`",
    f"{WG}/k touch",
    f"{WG}/k\nPostUp = touch {PWNED}",
    f"{WG}/k|touch${{IFS}}{PWNED}",
    f"{WG}/../wireguard/k",
    f"{WG}/%i",
]
# Only ever given to the pure check (never to a module on the host).
PAYLOADS = [*HOST_PAYLOADS, "/tmp/x;touch /tmp/pwned", "$(id)", "relative/keys", "~/keys", "/a//b", ""]  # noqa: S108
STATES = ["present", "absent", "status", "key"]
HOOKS_SH = r"""
source <(sed '/^# ~~ function override insertion point ~~/,$d' /usr/bin/wg-quick)
parse_options "$1"
execute_hooks "${POST_UP[@]}"
execute_hooks "${PRE_DOWN[@]}"
"""
# A stand-in for wg and iptables: records its name and arguments (NUL-separated, an empty field ends a
# call); "-C" and "-N" fail, so that the command after "||" runs too.
STUB = """#!/bin/sh
for a in "${0##*/}" "$@"; do printf '%s\\0' "$a"; done >> "$STUB_LOG"
printf '\\0' >> "$STUB_LOG"
case " $* " in *" -C "*|*" -N "*) exit 1;; esac
exit 0
"""


def members(me_key=KEY_C, **extra):
    return [
        {"name": "a", "endpoint": "192.0.2.1", "public_key": me_key, **extra.get("a", {})},
        {"name": "b", "endpoint": "192.0.2.2", "public_key": KEY_B, **extra.get("b", {})},
    ]


def present_args(**extra):
    return {
        "state": "present",
        "name": "a",
        "members": members(),
        "cidr": "10.99.0.0/24",
        "interface": "wg0",
        "key_dir": f"{WG}/keys",
        **extra,
    }


@pytest.fixture
def stubs(tmp_path):
    """(env, calls()): PATH with the wg and iptables stand-ins first; calls() is what they were asked."""
    bin_dir, log = tmp_path / "stubs", tmp_path / "stub.log"
    bin_dir.mkdir()
    for name in ("wg", "iptables"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    log.touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log)}

    def calls():
        fields = log.read_bytes().decode().split("\0")
        found, call = [], []
        for field in fields:
            if field:
                call.append(field)
            elif call:
                found.append(call)
                call = []
        log.write_text("")
        return found

    return env, calls


def run_hooks(interface, env):
    """What `wg-quick up` runs of the file's hooks (its own parser and executor), with stand-ins."""
    return subprocess.run(
        ["bash", "-c", HOOKS_SH, "bash", interface], capture_output=True, text=True, env=env, check=False
    )


# --- on the controller --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_validate_input_refuses_a_payload_in_key_dir_in_every_state(payload, state):
    with pytest.raises(mesh.MeshError) as err:
        validate_input._overlay(present_args(state=state, key_dir=payload))
    assert str(err.value).startswith("overlay_key_dir: ")
    assert str(err.value).endswith("Nothing was applied")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("interface", ["../ssh/sshd_config.d/10-bulwark", "..", "wg0;id", "wg 0", "w/g", ""])
def test_validate_input_refuses_an_interface_that_is_not_a_name_in_every_state(interface, state):
    with pytest.raises(mesh.MeshError, match=r"^bulwark_overlay_interface: .*Nothing was applied$"):
        validate_input._overlay(present_args(state=state, interface=interface))


# --- on the host ------------------------------------------------------------------------------------


# Each payload once, the states in turn (the pure check above takes every pair; a module run costs a second).
@pytest.mark.parametrize(
    ("payload", "state"), [(p, STATES[n % len(STATES)]) for n, p in enumerate(HOST_PAYLOADS)]
)
def test_the_module_refuses_a_payload_in_key_dir_before_touching_anything(
    payload, state, run_module, private_path, fake_systemd
):
    private_path(WG)
    done = run_module("overlay", present_args(state=state, key_dir=payload), env=fake_systemd.env())
    assert done.result and done.result.get("failed"), done
    assert done.result["msg"].startswith("overlay_key_dir: "), done.result["msg"]
    assert "Nothing was applied" in done.result["msg"]
    assert done.ops == []  # not a file read into a decision, not a command
    assert os.listdir(WG) == []


def test_a_key_dir_payload_never_runs_when_the_interface_comes_up(
    run_module, private_path, fake_systemd, stubs
):
    """The whole path an inventory value took: the key task, the mesh task, then wg-quick's PostUp."""
    private_path(WG)
    env, _calls = stubs
    payload = f"{WG}/k;touch {PWNED};#"
    key = run_module("overlay", {"state": "key", "key_dir": payload}, env=fake_systemd.env())
    me = (key.result or {}).get("public_key") or KEY_C
    run_module("overlay", present_args(key_dir=payload, members=members(me)), env=fake_systemd.env())
    if os.path.exists(f"{WG}/wg0.conf"):
        run_hooks("wg0", env)
    assert not os.path.exists(PWNED)
    assert not os.path.exists(f"{WG}/wg0.conf")
    assert key.result["failed"] and key.result["msg"].startswith("overlay_key_dir: ")


def test_a_plain_key_dir_is_accepted_and_named_as_is(run_module, private_path, fake_systemd):
    """The other side: a plain path passes on the host, and the file the module would write names it."""
    private_path(WG)
    key_dir = f"{WG}/keys-1.0_a@b+c/"
    key = run_module("overlay", {"state": "key", "key_dir": key_dir}, env=fake_systemd.env())
    assert key.rc == 0 and key.result["changed"], key
    assert os.listdir(WG) == ["keys-1.0_a@b+c"]
    done = run_module(
        "overlay",
        present_args(key_dir=key_dir, members=members(key.result["public_key"])),
        env=fake_systemd.env(),
        check_mode=True,
    )
    assert not done.result.get("failed") and done.result["changed"], done
    after = done.result["diff"]["after"]
    assert f"PostUp = wg set %i private-key {WG}/keys-1.0_a@b+c/private.key\n" in after
    assert "Endpoint = 192.0.2.2:51820\n" in after


@pytest.mark.parametrize(
    "args",
    [
        {"interface": "../ssh/sshd_config.d/10-bulwark"},
        {"interface": "../ssh/sshd_config.d/10-bulwark", "name": "../ssh/sshd_config.d/10-bulwark"},
        {"name": "../ssh/sshd_config.d/10-bulwark"},  # not a path anywhere: the name of absent is unused
    ],
)
def test_state_absent_cannot_remove_a_file_outside_etc_wireguard(
    args, run_module, private_path, fake_systemd
):
    private_path(WG)
    private_path("/etc/ssh")
    drop_in = Path("/etc/ssh/sshd_config.d/10-bulwark.conf")
    drop_in.write_text("PermitRootLogin no\n")
    done = run_module("overlay", {"state": "absent", **args}, env=fake_systemd.env())
    assert drop_in.read_text() == "PermitRootLogin no\n"
    if "interface" in args:
        assert done.result["failed"], done
        assert done.result["msg"].startswith("bulwark_overlay_interface: '../ssh/"), done.result["msg"]
        assert done.ops == []
        assert fake_systemd.calls() == []  # no `systemctl disable --now wg-quick@../ssh/...` either
    else:
        assert not done.result.get("failed"), done


def test_two_members_with_one_public_key_are_refused_naming_both(run_module, private_path, fake_systemd):
    private_path(WG)
    key = run_module("overlay", {"state": "key", "key_dir": f"{WG}/keys"}, env=fake_systemd.env())
    assert key.rc == 0, key
    mine = key.result["public_key"]
    # Another member given this host's key; two others sharing one; this host's key left unknown (check mode
    # predicts it from the key file) and another member holding it.
    for group, check_mode in (
        (members(mine, b={"public_key": mine}), False),
        ([*members(mine), {"name": "c", "endpoint": "192.0.2.3", "public_key": KEY_B}], False),
        (members(None, b={"public_key": mine}), True),
    ):
        done = run_module(
            "overlay", present_args(members=group), env=fake_systemd.env(), check_mode=check_mode
        )
        assert done.result["failed"], done
        msg = done.result["msg"]
        assert ": public key" in msg and "two members cannot share a key" in msg, msg
        assert not any(op.split("\t")[1].startswith(("write", "run systemctl")) for op in done.ops), done.ops
        assert not os.path.exists(f"{WG}/wg0.conf")
    with pytest.raises(mesh.MeshError, match=r"^b: public key: .* is also a's"):
        validate_input._overlay(present_args(members=members(KEY_B)))


# --- what is accepted renders as intended --------------------------------------------------------------

HOSTILE_TEXT = [
    "a;b",
    "$(id)",
    "`id`",
    "..",
    ".",
    "a b",
    "a\nPostUp = id",
    "#x",
    "-rf",
    "a'b",
    'a"b',
    "a\\b",
    "é",
    "%i",
    "fe80::1%x y;id",
    "",
]
# Each field: (what a real inventory holds, what an attacker tries). A drawn configuration is either plain
# (mostly accepted, so the renderer is exercised) or hostile (every field may be an attack).
FIELDS = {
    "name": (
        st.from_regex(r"[a-z][a-z0-9.@+_-]{0,10}", fullmatch=True),
        st.sampled_from(HOSTILE_TEXT) | st.text(),
    ),
    "key": (
        st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode()),
        st.sampled_from([*HOSTILE_TEXT, KEY_B + "\n", KEY_B[:-2] + "=;", "A" * 44]),
    ),
    "endpoint": (
        st.one_of(st.ip_addresses().map(str), st.ip_addresses(v=4).map(str), st.none()),
        st.sampled_from([*HOSTILE_TEXT, "192.0.2.1:51820", "192.0.2.1\n", "fe80::1%eth0"]),
    ),
    # {i}: the member's index, so that plain members do not collide.
    "address": (
        st.sampled_from([None, "10.99.0.{i}"]),
        st.sampled_from(["10.99.0.7\n", "10.99.0.300", "$(id)"]),
    ),
    "container_subnet": (
        st.sampled_from([None, "10.100.{i}.0/24"]),
        st.sampled_from(["10.100.9.0/24 ", "x;y"]),
    ),
    "port": (st.integers(1, 65535), st.integers(-1, 70000) | st.sampled_from(["51820;id", True])),
    "interface": (
        st.from_regex(r"[A-Za-z0-9_.-]{1,15}", fullmatch=True),
        st.sampled_from(["../ssh/x", "wg0;id", "wg 0", "wg0\n", "0123456789abcdef", "..", "%i"]),
    ),
    "keepalive": (st.integers(0, 65535), st.sampled_from([-1, "25\nPostUp = id", 70000])),
    "mtu": (st.none() | st.integers(1280, 9000), st.sampled_from([100, "1420;id"])),
    "container_cidr": (st.sampled_from([None, "10.100.0.0/16"]), st.sampled_from(["10.100.0.0/16\n#", "x"])),
    "key_dir": (
        st.from_regex(r"(/[A-Za-z0-9._@+-]{1,12}){1,4}/?", fullmatch=True),
        st.sampled_from(PAYLOADS) | st.text(st.characters(codec="utf-8"), max_size=20).map(lambda s: "/" + s),
    ),
}


@st.composite
def configurations(draw):
    hostile = draw(st.booleans())

    def field(name, i=0):
        plain, attack = FIELDS[name]
        value = draw(plain | attack if hostile else plain)
        return value.format(i=i + 10) if isinstance(value, str) and "{i}" in value else value

    options = {"cidr": "10.99.0.0/24"}
    options.update((key, field(key)) for key in ("port", "interface", "keepalive", "mtu", "container_cidr"))
    options["key_dir"] = field("key_dir")
    plain_names = draw(st.lists(FIELDS["name"][0], min_size=2, max_size=4, unique=True))
    member_list = [
        {
            "name": field("name") if hostile else name,
            "endpoint": field("endpoint"),
            "address": field("address", i),
            "public_key": field("key"),
        }
        for i, name in enumerate(plain_names)
    ]
    if options["container_cidr"] or hostile:
        for i, member in enumerate(member_list):
            member["container_subnet"] = field("container_subnet", i)
    return options, member_list, draw(st.booleans()), draw(st.booleans())


def expected_calls(hooks, interface):
    """What the stand-ins must record for these hooks: each chain's commands until one succeeds (the
    stand-ins fail -C and -N); `true` is bash's own."""
    found = []
    for _key, chain in hooks:
        for argv, _quiet in chain:
            if argv == ["true"]:
                break
            found.append([interface if word == "%i" else word for word in argv])
            if "-C" not in argv and "-N" not in argv:
                break
    return found


def hook_words(chain):
    words = []
    for n, (argv, quiet) in enumerate(chain):
        words += (["||"] if n else []) + argv + (["2>/dev/null"] if quiet else [])
    return words


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(configurations())
@example(
    (
        {"cidr": "10.99.0.0/24", "port": 51820, "interface": "wg0", "keepalive": 25, "key_dir": "/etc/k"},
        [
            {"name": "a", "endpoint": "192.0.2.1", "public_key": KEY_C},
            {"name": "b", "endpoint": "2001:db8::2", "public_key": KEY_B},
            {"name": "c", "endpoint": None, "public_key": "YUVwZQ3HUA8g9K3WPBOzpivTgtQBR8kXN7ceGCgZ1V4="},
        ],
        True,
        True,
    )
)
@example(
    (
        {
            "cidr": "10.99.0.0/24",
            "port": 51820,
            "interface": "wg0",
            "keepalive": 25,
            "key_dir": HOST_PAYLOADS[0],
        },
        members(),
        False,
        False,
    )
)
@example(
    (
        {"cidr": "10.99.0.0/24", "port": 51820, "interface": "wg0", "keepalive": 25, "key_dir": "/etc/k"},
        members(b={"endpoint": "fe80::1%x y;id"}),
        False,
        False,
    )
)
def test_an_accepted_configuration_is_read_by_wg_quick_as_intended(private_path, stubs, configuration):
    options, member_list, docker, with_psk = configuration
    try:
        checked = mesh.host_options(options)
        the_mesh = mesh.build(options, member_list)
    except mesh.MeshError:
        return  # refused, by name: nothing would be written
    env, calls = stubs
    if not os.path.ismount(WG):
        private_path(WG, copy=False)
    interface, key_dir = checked["interface"], checked["key_dir"]
    me = sorted(the_mesh.members)[0]
    view = the_mesh.view(me)
    for peer in view["peers"]:
        peer["psk"] = psk.fingerprint(psk.draw()) if with_psk else None
    psk_dir = f"{key_dir}/psk" if with_psk else None
    text = wgconf.render(view, options.get("mtu") or 1420, f"{key_dir}/private.key", docker, psk_dir)
    conf = Path(WG, f"{interface}.conf")
    conf.write_text(text)
    conf.chmod(0o600)
    try:
        # wg-quick's own parser: everything but its keys goes to wg, line for line.
        strip = subprocess.run(["wg-quick", "strip", interface], capture_output=True, text=True, check=False)
        assert strip.returncode == 0, strip.stderr
        quick_keys = ("Address = ", "MTU = ", "PostUp = ", "PreDown = ")
        kept = [line for line in text.splitlines() if not line.startswith(quick_keys)]
        assert strip.stdout == "".join(line + "\n" for line in kept) + "\n"
        # Each hook line is exactly its commands' words, and bash runs exactly those commands.
        hooks = wgconf.hooks(view, f"{key_dir}/private.key", docker, psk_dir)
        lines = [line for line in text.splitlines() if line.startswith(("PostUp = ", "PreDown = "))]
        assert [line.split(" = ", 1)[0] for line in lines] == [key for key, _chain in hooks]
        for line, (_key, chain) in zip(lines, hooks, strict=True):
            assert shlex.split(line.split(" = ", 1)[1]) == hook_words(chain)
        ran = run_hooks(interface, env)
        assert ran.returncode == 0, ran.stderr
        post_up = [h for h in hooks if h[0] == "PostUp"]
        pre_down = [h for h in hooks if h[0] == "PreDown"]
        assert calls() == expected_calls(post_up, interface) + expected_calls(pre_down, interface)
        assert os.listdir(WG) == [conf.name]
    finally:
        conf.unlink()
