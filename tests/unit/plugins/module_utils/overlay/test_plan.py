"""The overlay's plan as data: what the module read in, the host operations (with their inverses) and the
result out; and, run by the executor with a fake runner and files in tmp_path, a failure mid-plan runs
exactly the inverses of what was applied."""

import dataclasses

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import executor
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import (
    Attributes,
    Command,
    Current,
    Directory,
    Kernel,
    Refused,
    Remove,
    Unit,
    Write,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import leave, mesh, plan, wgconf

PRIVATE = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"
NEXT_PRIVATE = "UAmrQdlrxm4eALRcvM4fz0sEDpK7xrDTsJ73LNkB/Ek=\n"
KEY_B = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
KEY_C = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
PSK_B = "c2VjcmV0LXByZXNoYXJlZC1rZXktb2YtMzItYnl0ZXM="
PATHS = plan.Paths("wg0", "/etc/bulwark/overlay")
UNIT = "wg-quick@wg0.service"
CONNTRACK = "/usr/sbin/conntrack"


def public(private):
    return wgconf.public_from_private(private)


def keys(rotating=False):
    current = Current(PRIVATE, 0o600)
    if not rotating:
        return plan.Keys(current, public(PRIVATE))
    return plan.Keys(current, public(PRIVATE), Current(NEXT_PRIVATE, 0o600), public(NEXT_PRIVATE))


def options(*others, key=PRIVATE, **extra):
    """The module's options (its defaults), for member a (its key's public key given, as the role gives
    it) with b (and others) at their endpoints."""
    found = {name: spec.get("default") for name, spec in plan.argument_spec().items()}
    members = [{"name": "a", "endpoint": "192.0.2.1", "public_key": key and public(key)}]
    members += [{"name": "b", "endpoint": "192.0.2.2", "public_key": KEY_B}, *others]
    found.update(name="a", cidr="10.99.0.0/24", members=members, **extra)
    return found


C = {"name": "c", "endpoint": "192.0.2.3", "public_key": KEY_C}


def member(opts, the_keys=None, check_mode=False):
    return plan.member(opts, PATHS, the_keys or keys(), check_mode=check_mode)


def live_of(me, public_key=None):
    """`wg show dump` parsed, as the interface would be after configuring me's view."""
    return {
        "public_key": public_key or me.public,
        "listen_port": me.view["listen_port"],
        "peers": {
            p["public_key"]: {
                "psk": p.get("psk"),
                "endpoint": p["endpoint"],
                "allowed_ips": sorted(p["allowed_ips"]),
                "latest_handshake": 0,
                "keepalive": p["keepalive"],
            }
            for p in me.view["peers"]
        },
    }


def settled(opts, **host):
    """A host on which opts were applied: the files as present() writes them, the interface up."""
    me = member(opts)
    ops, _result = plan.present(opts, PATHS, keys(), me, plan.Host(files={}, registry={}, mtu=1420))
    written = {op.path: Current(op.content, op.mode) for op in ops.ops if isinstance(op, Write)}
    found = {
        "files": written,
        "registry": me.registry,
        "mtu": 1420,
        "live": live_of(me),
        "live_address": me.view["address"],
        "live_mtu": 1420,
        "live_routes": wgconf.routes(me.view),
        "enabled": True,
        **host,
    }
    return plan.Host(**found)


def kinds(ops):
    return [type(op).__name__ for op in ops.ops]


# --- state=key -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        ("fresh", plan.Keys(), None, False, ["/etc/bulwark/overlay made root's only (0700)",
                                             "/etc/bulwark/overlay/private.key generated"]),
        ("present", keys(), 0o700, False, []),
        ("loose", plan.Keys(Current(PRIVATE, 0o644), public(PRIVATE)), 0o755, False,
         ["/etc/bulwark/overlay made root's only (0700)", "/etc/bulwark/overlay/private.key made 0600"]),
        ("rotate", keys(), 0o700, True, ["/etc/bulwark/overlay made root's only (0700)",
                                         "/etc/bulwark/overlay/private.key made 0600",
                                         "/etc/bulwark/overlay/private.key.next staged (a rotation)"]),
        ("rotation staged", keys(rotating=True), 0o700, True, []),
    ],
)  # fmt: skip
@pytest.mark.parametrize("check_mode", [False, True])
def test_key_makes_what_is_missing_and_returns_only_public_keys(row, check_mode):
    case, the_keys, dir_mode, rotate, words = row
    drawn = [NEXT_PRIVATE]  # check mode draws none: a fresh host may not have cryptography yet
    ops, result = plan.key(PATHS, the_keys, dir_mode, rotate, drawn.pop, check_mode=check_mode)
    assert drawn == ([NEXT_PRIVATE] if check_mode or case not in ("fresh", "rotate") else [])
    assert ops.words() == words and result["changed"] is bool(words)
    for op in ops.ops:
        if isinstance(op, Write):  # a key: secret, root's, 0600, and a new file's inverse is its removal
            assert op.secret and op.mode == 0o600 and (op.uid, op.gid) == (0, 0)
            assert op.inverse == Remove(op.path, what=f"remove {op.path}")
        if isinstance(op, Directory):
            assert op.private and op.mode == 0o700
        if isinstance(op, Attributes):  # what it was is put back on a failure
            assert op.inverse.mode == the_keys.current.mode
    assert PRIVATE.strip() not in str(result) and NEXT_PRIVATE.strip() not in str(result)
    if case == "fresh":
        assert result["public_key"] == (None if check_mode else public(NEXT_PRIVATE))
    if case == "rotate":
        assert result["public_key"] == public(PRIVATE)
        assert result["next_public_key"] == (None if check_mode else public(NEXT_PRIVATE))


# --- state=present ------------------------------------------------------------------------------------------


def test_a_fresh_member_records_itself_first_writes_its_file_then_starts():
    opts = options()
    me = member(opts)
    ops, result = plan.present(opts, PATHS, keys(), me, plan.Host(files={}, registry={}, mtu=1420))
    assert ops.words() == [
        f"membership recorded in {leave.FACT_PATH}",
        "/etc/bulwark/overlay made root's only (0700)",
        "peer registry written",
        "/etc/wireguard/wg0.conf written",
        f"enabling {UNIT}",
        f"starting {UNIT}",
        "checking wg0's live public key",
    ]
    assert kinds(ops) == ["Write", "Directory", "Write", "Write", "Unit", "Unit", "Command"]
    fact, _dir, registry, conf, enable, restart, check = ops.ops
    assert (fact.mode, fact.make_dirs, fact.anchor) == (0o644, 0o755, "/etc")
    assert (conf.mode, conf.make_dirs, conf.anchor) == (0o600, 0o700, "/etc")
    assert registry.mode == 0o600 and '"b": "' + KEY_B in registry.content
    assert conf.content == result["diff"]["after"] and result["diff"]["before"] == ""
    assert PRIVATE.strip() not in conf.content  # the file names the key file, never the key
    assert fact.inverse == Remove(leave.FACT_PATH, what=f"remove {leave.FACT_PATH}", anchor="/etc")
    assert enable.inverse == Unit("disable", UNIT, what=f"disabling {UNIT}")
    assert restart.verb == "restart" and restart.inverse is None
    assert check.argv == ("wg", "show", "wg0", "public-key")
    assert check.expect == (me.public, "wg0: after the change, the live public key is not "
                                       "/etc/bulwark/overlay/private.key's")  # fmt: skip
    assert result["action"] == "start" and result["changed"]
    assert result["reasons"] == ["the interface is down", f"membership recorded in {leave.FACT_PATH}"]
    assert result["registry"] == {"a": me.public, "b": KEY_B}
    assert result["address"] == me.view["address"]
    assert result["container_network"] == {"skipped": "no container subnet"}


def test_nothing_to_change_is_an_empty_plan():
    opts = options()
    ops, result = plan.present(opts, PATHS, keys(), member(opts), settled(opts))
    assert ops.ops == [] and not result["changed"] and result["action"] is None and result["reasons"] == []
    assert result["diff"]["before"] == result["diff"]["after"]


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ([], [C], "peer c added"),
        ([C], [], f"peer {KEY_C} removed"),
    ],
)
def test_a_peer_added_or_removed_is_synced_without_a_restart(before, after, reason):
    host = settled(options(*before), conntrack=CONNTRACK)
    opts = options(*after)
    me = member(opts)
    ops, result = plan.present(opts, PATHS, keys(), me, host)
    assert result["action"] == "sync" and reason in result["reasons"]
    assert "Unit" not in kinds(ops)
    sync = next(op for op in ops.ops if isinstance(op, Command) and op.argv[:2] == ("wg", "syncconf"))
    # The private key goes to wg's standard input only: never in the words, the result or a file.
    assert f"PrivateKey = {PRIVATE.strip()}" in sync.data
    assert PRIVATE.strip() not in " ".join(ops.words()) + str(result)
    words = ops.words()
    assert words.index("/etc/wireguard/wg0.conf written") < words.index("wg syncconf")
    assert words.index("wg syncconf") < words.index("checking wg0's live public key")
    flows = [op for op in ops.ops if getattr(op, "argv", ())[:1] == (CONNTRACK,)]
    if after == []:  # the departed peer's flows go, both ways; a failure there is only a warning
        assert [op.argv[-4:] for op in flows] == [
            ("-s", "192.0.2.3", "--dport", "51820"), ("-d", "192.0.2.3", "--sport", "51820"),
        ]  # fmt: skip
        assert all(op.ok == (0, 1) and op.warn for op in flows)
        assert "conntrack flows of 192.0.2.3 (a departed peer) deleted" in result["reasons"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"live_mtu": 1400}, "MTU 1400 -> 1420"),
        ({"live_address": "10.99.0.200/24"}, "address 10.99.0.200/24 -> "),
    ],
)
def test_an_mtu_or_address_change_restarts(change, reason):
    opts = options()
    me = member(opts)
    ops, result = plan.present(opts, PATHS, keys(), me, dataclasses.replace(settled(opts), **change))
    assert result["action"] == "restart" and result["reasons"][0].startswith(reason)
    assert [op.verb for op in ops.ops if isinstance(op, Unit)] == ["restart"]
    assert not any(isinstance(op, Command) and op.argv[:2] == ("wg", "syncconf") for op in ops.ops)


def test_a_missing_key_is_refused_and_predicted_in_check_mode():
    with pytest.raises(Refused, match=r"private.key is missing: run the module with state=key first"):
        member(options(), plan.Keys())  # the key given, its file gone
    me = member(options(key=None), plan.Keys(), check_mode=True)
    assert me.public is None and me.registry == {"b": KEY_B}
    assert me.view["peers"][0]["public_key"] == KEY_B


def test_a_key_given_that_is_not_the_key_file_s_is_refused():
    opts = options()
    opts["members"][0]["public_key"] = KEY_C
    with pytest.raises(mesh.MeshError, match=r"^a: the public key given .* Nothing was applied$"):
        member(opts)


def test_a_rotation_syncs_the_staged_key_and_makes_it_the_key_file_once_checked():
    host = settled(options())
    opts = options(key=NEXT_PRIVATE)  # the peers were given the staged key first
    me = member(opts, keys(rotating=True))
    ops, result = plan.present(opts, PATHS, keys(rotating=True), me, host)
    assert result["action"] == "sync" and "the live public key is not the key file's" in result["reasons"]
    assert ops.words()[-3:] == [
        "checking wg0's live public key",
        "/etc/bulwark/overlay/private.key.next made the key file",
        "/etc/bulwark/overlay/private.key.next removed (now the key file)",
    ]
    check, promote, remove = ops.ops[-3:]
    assert check.expect[0] == public(NEXT_PRIVATE)
    assert promote.content == NEXT_PRIVATE and promote.secret and promote.inverse.content == PRIVATE
    assert remove.inverse.content == NEXT_PRIVATE and remove.inverse.secret


def test_a_rotation_with_a_restart_promotes_the_key_before_the_start():
    host = dataclasses.replace(settled(options()), live=None)
    opts = options(key=NEXT_PRIVATE)
    ops, _result = plan.present(opts, PATHS, keys(rotating=True), member(opts, keys(rotating=True)), host)
    words = ops.words()
    assert words.index("/etc/bulwark/overlay/private.key.next made the key file") < words.index(
        f"starting {UNIT}"
    )


def test_preshared_keys_added_and_removed():
    opts = options(preshared_keys=True, preshared_key_values={"b": PSK_B})
    host = settled(options(), psk_names=["gone"])
    host.files[PATHS.psk("gone")] = Current("old\n", 0o600)
    ops, result = plan.present(opts, PATHS, keys(), member(opts), host)
    assert (
        "preshared key of b set" in result["reasons"] and "preshared key of gone removed" in result["reasons"]
    )
    assert result["action"] == "sync"  # the live peer has no preshared key yet
    words = ops.words()
    assert words.index("/etc/bulwark/overlay/psk made root's only (0700)") < words.index(
        "preshared key of b set"
    )
    written = next(op for op in ops.ops if op.what == "preshared key of b set")
    assert written.content == PSK_B + "\n" and written.secret and written.mode == 0o600
    removed = next(op for op in ops.ops if op.what == "preshared key of gone removed")
    assert isinstance(removed, Remove) and removed.inverse.content == "old\n" and removed.inverse.secret
    assert words.index("preshared key of b set") < words.index("wg syncconf")
    sync = next(op for op in ops.ops if op.what == "wg syncconf")
    assert f"PresharedKey = {PSK_B}" in sync.data and PSK_B not in str(result)


def test_preshared_keys_not_given_are_refused_and_predicted_in_check_mode():
    opts = options(preshared_keys=True, preshared_key_values={})
    with pytest.raises(mesh.MeshError, match=r"^preshared_key_values: no key for b. Nothing was applied$"):
        member(opts)
    assert member(opts, check_mode=True).psks == {"b": None}


SUBNET_OPTS = {"container_cidr": "10.100.0.0/16"}


@pytest.mark.parametrize("live", ["same", "restart"])
def test_docker_holes_missing_are_opened_after_a_sync_and_left_to_post_up_on_a_start(live):
    opts = options(**SUBNET_OPTS)
    me = member(opts)
    subnet = me.view["container_subnet"]
    host = settled(opts, docker=("present", [subnet]))
    host = dataclasses.replace(host, holes_missing=[["-i", "%i", "-d", subnet]])
    if live == "restart":
        host = dataclasses.replace(host, live_mtu=1400)
    ops, result = plan.present(opts, PATHS, keys(), me, host)
    assert f"Docker's DOCKER-USER admits -i %i -d {subnet}" in result["reasons"]
    assert result["container_network"] == {"name": "bulwark-overlay", "subnet": subnet}
    iptables = [op for op in ops.ops if isinstance(op, Command) and op.argv[0] == "iptables"]
    if live == "restart":
        assert iptables == []  # wg-quick's PostUp opens them
        return
    chain, hole = iptables
    assert chain.argv == ("iptables", "-N", "DOCKER-USER") and chain.ok is None
    assert hole.argv == ("iptables", "-I", "DOCKER-USER", "-i", "wg0", "-d", subnet, "-j", "ACCEPT")
    assert hole.inverse.argv == ("iptables", "-D", "DOCKER-USER", "-i", "wg0", "-d", subnet, "-j", "ACCEPT")


def test_docker_network_created_or_refused():
    opts = options(**SUBNET_OPTS)
    me = member(opts)
    subnet = me.view["container_subnet"]
    ops, result = plan.present(opts, PATHS, keys(), me, settled(opts, docker=("absent", [])))
    create = ops.ops[-1]
    assert create.argv[:3] == ("docker", "network", "create") and create.argv[-1] == "bulwark-overlay"
    assert create.inverse.argv == ("docker", "network", "rm", "bulwark-overlay")
    assert f"Docker network bulwark-overlay ({subnet}) created" in result["reasons"]
    with pytest.raises(mesh.MeshError, match=r"has 172.17.0.0/16, not its container subnet"):
        plan.present(opts, PATHS, keys(), me, settled(opts, docker=("present", ["172.17.0.0/16"])))
    _ops, result = plan.present(opts, PATHS, keys(), me, settled(opts, docker=("no docker", [])))
    assert result["container_network"] == {"skipped": "Docker is not installed"}


def test_a_hub_turns_forwarding_on_now_and_at_boot_and_a_former_hub_drops_its_drop_in():
    spoke = {"name": "s", "endpoint": "", "public_key": KEY_C}
    opts = options(spoke)
    me = member(opts)
    assert me.view["forwarding"]
    host = settled(options(), ip_forward="0\n")
    ops, result = plan.present(opts, PATHS, keys(), me, host)
    assert "IPv4 forwarding on (the hub routes for its spokes)" in result["reasons"]
    drop_in = next(op for op in ops.ops if getattr(op, "path", None) == plan.FORWARDING_FILE)
    assert drop_in.content == plan.FORWARDING_TEXT and isinstance(drop_in.inverse, Remove)
    kernel = next(op for op in ops.ops if isinstance(op, Kernel))
    assert (kernel.value, kernel.inverse.value) == ("1", "0")
    former = settled(opts, ip_forward="1\n")
    ops, result = plan.present(options(), PATHS, keys(), member(options()), former)
    removal = next(op for op in ops.ops if getattr(op, "path", None) == plan.FORWARDING_FILE)
    assert isinstance(removal, Remove) and removal.inverse.content == plan.FORWARDING_TEXT
    assert f"{plan.FORWARDING_FILE} removed (no longer a hub)" in result["reasons"]
    assert not any(isinstance(op, Kernel) for op in ops.ops)  # the live value stays: Docker may route too


def test_check_mode_runs_nothing():
    opts = options()
    ops, _result = plan.present(opts, PATHS, keys(), member(opts), plan.Host(files={}, registry={}, mtu=1420))
    runner = FakeRunner()
    assert executor.Executor(runner, check_mode=True).run(ops) == ops.words()
    assert runner.calls == []


# --- leaving ---------------------------------------------------------------------------------------------


def leaver(keep_key):
    found = leave.removals(PATHS.conf, PATHS.key_dir, ["b"], plan.FORWARDING_FILE, keep_key)
    doomed = [(path, what, Current(f"{path}\n", 0o600)) for path, what in found]
    holes = leave.docker_holes_left("-A DOCKER-USER -i wg0 -o wg0 -j ACCEPT\n", "wg0")
    return leave.Member(doomed=doomed, active=True, enabled=True, link=True, holes=holes)


@pytest.mark.parametrize("keep_key", [True, False])
def test_a_leaver_closes_the_holes_stops_the_unit_then_removes_its_files_the_record_last(keep_key):
    ops, reasons = leave.plan("wg0", leaver(keep_key))
    assert reasons[:3] == [
        f"{UNIT} stopped and disabled",
        "interface wg0 removed",
        "Docker's DOCKER-USER no longer admits -i wg0 -o wg0",
    ]
    hole, stop, *removals = ops.ops
    assert hole.argv == ("iptables", "-D", "DOCKER-USER", "-i", "wg0", "-o", "wg0", "-j", "ACCEPT")
    assert hole.inverse.argv == ("iptables", "-I", "DOCKER-USER", "-i", "wg0", "-o", "wg0", "-j", "ACCEPT")
    assert stop.argv == ("systemctl", "disable", "--now", UNIT)
    assert stop.inverse.argv == ("systemctl", "enable", "--now", UNIT)
    assert all(isinstance(op, Remove) for op in removals)  # the unit's stop took the interface down
    assert removals[-1].path == leave.FACT_PATH
    assert (f"{PATHS.key_dir}/private.key" in [op.path for op in removals]) is not keep_key
    assert all(op.inverse.content == f"{op.path}\n" and op.inverse.secret for op in removals)


def test_a_leaver_with_an_interface_but_no_unit_deletes_the_link_and_a_link_file_is_not_put_back():
    found = leave.Member(doomed=[(PATHS.conf, "its wg-quick file", Current("x", None))], link=True)
    ops, reasons = leave.plan("wg0", found)
    assert reasons == ["interface wg0 removed", f"{PATHS.conf} removed (its wg-quick file)"]
    assert ops.ops[0].argv == ("ip", "link", "del", "dev", "wg0")
    assert ops.ops[1].inverse is None
    assert leave.plan("wg0", leave.Member()) == (leave.Plan(), [])


# --- the plan run by the executor: a failure runs exactly the inverses of what was applied ---------------


class FakeRunner:
    """Commands: `fail` (a word sequence) fails with `rc`; `wg show ... public-key` prints `live_key`."""

    def __init__(self, fail=None, live_key=None, rc=1):
        self.calls, self.fail, self.live_key, self.rc = [], fail, live_key, rc

    def run(self, argv, data=None, check=False, what=None, env=None):
        self.calls.append(list(argv))
        if self.fail and list(argv[: len(self.fail)]) == list(self.fail):
            if check:
                raise HostError(f"{what or argv[0]} failed (rc={self.rc})")
            return self.rc, "", "no"
        if argv[:2] == ["wg", "show"]:
            return 0, f"{self.live_key}\n", ""
        return 0, "", ""


def relocated(op, root):
    """op with its paths (and its inverse's) under root: the plan as it would run there."""
    changes = {}
    for field in ("path", "anchor"):
        value = getattr(op, field, None)
        if isinstance(value, str) and value.startswith("/"):
            changes[field] = f"{root}{value}"
    if getattr(op, "inverse", None) is not None:
        changes["inverse"] = relocated(op.inverse, root)
    return dataclasses.replace(op, **changes)


def fresh_plan(tmp_path):
    opts = options()
    me = member(opts)
    ops, _result = plan.present(opts, PATHS, keys(), me, plan.Host(files={}, registry={}, mtu=1420))
    ops.ops = [relocated(op, tmp_path) for op in ops.ops]
    (tmp_path / "etc").mkdir(mode=0o755)
    return me, ops


KEY_DIR_PRIVATE = "/etc/bulwark/overlay made root's only (0700)"
FILES_PUT_BACK = [f"remove {PATHS.conf}", f"remove {PATHS.registry}", f"remove {leave.FACT_PATH}"]


def left(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("fail", "applied", "restored", "unrestored"),
    [
        (("systemctl", "enable"), 4, FILES_PUT_BACK, [KEY_DIR_PRIVATE]),
        (("systemctl", "restart"), 5, [f"disabling {UNIT}", *FILES_PUT_BACK], [KEY_DIR_PRIVATE]),
    ],
)  # fmt: skip
def test_a_failure_mid_plan_runs_exactly_the_inverses_of_what_was_applied(
    tmp_path, fail, applied, restored, unrestored
):
    _me, ops = fresh_plan(tmp_path)
    runner = FakeRunner(fail=fail)
    with pytest.raises(executor.PlanFailed) as caught:
        executor.Executor(runner).run(ops)
    exc = caught.value
    assert exc.applied == ops.words()[:applied]
    assert [w.replace(str(tmp_path), "") for w in exc.restored] == restored
    assert [w.replace(str(tmp_path), "") for w in exc.unrestored] == unrestored
    assert left(tmp_path) == []  # every file it wrote is gone again
    assert runner.calls[-1][:2] == (["systemctl", "disable"] if applied == 5 else list(fail))


def test_a_live_key_that_is_not_the_key_file_s_undoes_the_files_and_says_what_stays(tmp_path):
    me, ops = fresh_plan(tmp_path)
    runner = FakeRunner(live_key=KEY_C)
    with pytest.raises(executor.PlanFailed) as caught:
        executor.Executor(runner).run(ops)
    text = str(caught.value)
    assert text.startswith(
        "checking wg0's live public key failed: wg0: after the change, the live public key is not"
    )
    assert f"NOT put back: starting {UNIT}" in text and left(tmp_path) == []
    ok = FakeRunner(live_key=me.public)
    assert executor.Executor(ok).run(ops) == ops.words()
    assert len(left(tmp_path)) == 3


def test_a_best_effort_command_that_fails_is_a_warning():
    ops = plan.Plan().add(Command((CONNTRACK, "-D"), ok=(0, 1), warn=True, what="deleting flows"))
    for rc, warnings in ((1, []), (2, ["deleting flows failed (rc=2): no"])):
        run = executor.Executor(FakeRunner(fail=(CONNTRACK,), rc=rc))
        assert run.run(ops) == ["deleting flows"] and run.warnings == warnings


# --- what the overlay added to the executor (host/plan.py, host/executor.py) ------------------------------


def test_a_kernel_value_is_set_and_a_failure_is_a_host_error(tmp_path):
    value = tmp_path / "ip_forward"
    value.write_text("0\n")
    run = executor.Executor(FakeRunner())
    run.run(plan.Plan().add(Kernel(str(value), "1", what="forwarding on")))
    assert value.read_text() == "1\n"
    with pytest.raises(executor.PlanFailed, match=r"^forwarding on failed: cannot set .*missing"):
        run.run(plan.Plan().add(Kernel(str(tmp_path / "missing" / "x"), "1", what="forwarding on")))


def test_a_private_directory_is_made_root_only_and_a_check_is_never_listed_as_not_put_back(tmp_path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o755)
    ops = plan.Plan().add(
        Directory(str(key_dir), 0o700, private=True, what="keys private"),
        Command(("wg", "show"), expect=("right", "the live key is not the file's"), what="checking"),
        Command(("false",), what="last"),
    )
    with pytest.raises(executor.PlanFailed) as caught:
        executor.Executor(FakeRunner(fail=("false",), live_key="right")).run(ops)
    assert oct(key_dir.stat().st_mode & 0o777) == "0o700"
    assert caught.value.applied == ["keys private", "checking"]
    assert caught.value.unrestored == ["keys private"]  # the check changed nothing
    with pytest.raises(executor.PlanFailed, match=r"^checking failed: the live key is not the file's"):
        executor.Executor(FakeRunner(live_key="wrong")).run(plan.Plan().add(ops.ops[1]))
