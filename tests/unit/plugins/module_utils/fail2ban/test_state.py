"""The plan: only owned files change; reloads touch only the jails concerned."""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import jail as j
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import state as s

RELOAD = ["fail2ban-client", "reload"]
RESTART = ["fail2ban-client", "reload", "--restart"]
HOST = j.HostFacts(filters={"sshd", "recidive"}, journal_only=True)


def _desired(jails, filters=None):
    return j.desired_files(*j.build(jails, filters, HOST))


def test_fresh_host_writes_every_file_and_needs_a_start():
    desired = _desired({"sshd": {}, "recidive": {}})
    plan = s.plan(desired, {}, set())
    assert plan.changed
    assert sorted(plan.write) == ["jail.d/bulwark-recidive.local", "jail.d/bulwark-sshd.local"]
    assert plan.remove == []
    # The server is not running: the module starts the service rather than reloading.
    assert s.reload_commands(plan, {}, None, ["recidive", "sshd"]) == []


def test_no_change_means_no_reload():
    desired = _desired({"sshd": {}})
    plan = s.plan(desired, dict(desired), set())
    assert not plan.changed
    assert plan.diffs() == []
    assert s.reload_commands(plan, {}, ["sshd"], ["sshd"]) == []


def test_no_change_but_a_jail_not_running_reloads_the_server():
    desired = _desired({"sshd": {}, "recidive": {}})
    plan = s.plan(desired, dict(desired), set())
    assert s.reload_commands(plan, {}, ["sshd"], ["recidive", "sshd"]) == [RELOAD]


def test_changed_jail_restarts_only_that_jail():
    before = _desired({"sshd": {}, "recidive": {}})
    after = _desired({"sshd": {"maxretry": 3}, "recidive": {}})
    plan = s.plan(after, before, set())
    assert list(plan.write) == ["jail.d/bulwark-sshd.local"]
    wanted = ["recidive", "sshd"]
    assert s.reload_commands(plan, {}, wanted, wanted) == [[*RESTART, "sshd"]]
    (diff,) = plan.diffs()
    assert diff["before_header"] == "/etc/fail2ban/jail.d/bulwark-sshd.local"
    assert "maxretry = 3" in diff["after"]
    assert "maxretry" not in diff["before"]


def test_first_run_over_a_stock_jail_restarts_it_and_starts_the_new_one():
    # Debian's package runs its own sshd jail; our file replaces its settings (and its ban action).
    after = _desired({"sshd": {}, "recidive": {}})
    plan = s.plan(after, {}, set())
    assert s.reload_commands(plan, {}, ["sshd"], ["recidive", "sshd"]) == [RELOAD, [*RESTART, "sshd"]]


def test_added_or_removed_jail_reloads_the_server():
    before = _desired({"sshd": {}})
    after = _desired({"sshd": {}, "recidive": {}})
    assert s.reload_commands(s.plan(after, before, set()), {}, ["sshd"], ["recidive", "sshd"]) == [RELOAD]
    plan = s.plan(before, after, set())
    assert plan.remove == ["jail.d/bulwark-recidive.local"]
    assert plan.diffs()[0]["after"] == ""
    assert s.reload_commands(plan, {}, ["recidive", "sshd"], ["sshd"]) == [RELOAD]


def test_disabling_a_jail_reloads_the_server():
    before = _desired({"sshd": {}})
    after = _desired({"sshd": {"enabled": False}})
    assert s.reload_commands(s.plan(after, before, set()), {}, ["sshd"], []) == [RELOAD]


def test_changed_custom_filter_restarts_its_jails():
    filters = {"app": {"failregex": "^fail <HOST>$"}}
    jails = {"app": {"logpath": "/var/log/app.log"}, "sshd": {}}
    before = _desired(jails, filters)
    after = _desired(jails, {"app": {"failregex": "^failed <HOST>$"}})
    plan = s.plan(after, before, set())
    assert list(plan.write) == ["filter.d/app.conf"]
    wanted = ["app", "sshd"]
    assert s.reload_commands(plan, {"app": ["app"]}, wanted, wanted) == [[*RESTART, "app"]]


def test_foreign_files_are_never_replaced():
    desired = _desired({"sshd": {}}, {"sshd-extra": {"failregex": "^x <HOST>$"}})
    with pytest.raises(j.JailError, match=r"/etc/fail2ban/filter.d/sshd-extra.conf"):
        s.plan(desired, {}, {"filter.d/sshd-extra.conf"})


def test_owned_files_without_marker_are_refused():
    with pytest.raises(j.JailError, match="no marker"):
        s.plan({}, {"jail.d/bulwark-x.local": "[x]\n"}, set())


STATUS = "Status\n|- Number of jail:\t2\n`- Jail list:\trecidive, sshd\n"
JAIL_STATUS = """Status for the jail: sshd
|- Filter
|  |- Currently failed:\t1
|  |- Total failed:\t7
|  `- Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd
`- Actions
   |- Currently banned:\t2
   |- Total banned:\t3
   `- Banned IP list:\t172.30.3.31 192.0.2.1
"""


def test_parse_status():
    assert s.parse_status(STATUS) == ["recidive", "sshd"]
    assert s.parse_status("Status\n|- Number of jail:\t0\n`- Jail list:\t\n") == []
    with pytest.raises(ValueError, match="Jail list"):
        s.parse_status("ERROR  Failed to access socket path")


def test_parse_jail_status():
    parsed = s.parse_jail_status(JAIL_STATUS)
    assert parsed == {
        "currently_failed": 1,
        "total_failed": 7,
        "currently_banned": 2,
        "total_banned": 3,
        "banned": ["172.30.3.31", "192.0.2.1"],
    }


def test_parse_actions():
    assert s.parse_actions("No actions for jail sshd\n") == []
    out = "The jail sshd has the following actions:\nnftables-multiport\n"
    assert s.parse_actions(out) == ["nftables-multiport"]
    out = "The jail x has the following actions:\niptables-multiport, sendmail-whois\n"
    assert s.parse_actions(out) == ["iptables-multiport", "sendmail-whois"]


def test_missing_jails():
    assert s.missing_jails(["sshd", "recidive", "nginx-http-auth"], ["sshd"]) == [
        "nginx-http-auth",
        "recidive",
    ]
    assert s.missing_jails(["sshd"], ["recidive", "sshd"]) == []


def test_a_world_readable_owned_file_is_rewritten_0640_without_a_reload():
    desired = _desired({"sshd": {}})
    plan = s.plan(desired, dict(desired), set(), {"jail.d/bulwark-sshd.local": 0o644})
    assert list(plan.write) == ["jail.d/bulwark-sshd.local"]
    assert plan.diffs()[0]["before_header"] == "/etc/fail2ban/jail.d/bulwark-sshd.local (mode 0644)"
    assert plan.diffs()[0]["after_header"] == "/etc/fail2ban/jail.d/bulwark-sshd.local (mode 0640)"
    # Only the mode changes: fail2ban reads nothing new, so no jail restarts.
    assert s.reload_commands(plan, {"sshd": ["sshd"]}, ["sshd"], ["sshd"]) == []
    assert not s.plan(desired, dict(desired), set(), {"jail.d/bulwark-sshd.local": 0o640}).changed


def test_diffs_never_show_action_parameter_values():
    secret = "cf-token-0123456789"  # noqa: S105  (a made-up token the diff must hide)
    before = _desired({"sshd": {"action": [f'cloudflare[cfuser="ops@example.org", cftoken="{secret}"]']}})
    after = _desired({"sshd": {"action": [f'cloudflare[cfuser="ops@example.org", cftoken="{secret}x"]']}})
    diff = s.plan(after, before, set()).diffs()[0]
    assert secret not in diff["before"] + diff["after"]
    assert "cloudflare[cfuser=<redacted>, cftoken=<redacted>]" in diff["after"]


def test_the_diff_of_a_jail_file_redacts_the_secret_options_it_is_given():
    before = f"{j.MARKER}\n[sshd]\ncf_token = old-value\n"
    after = f"{j.MARKER}\n[sshd]\ncf_token = new-value\n"
    path = "jail.d/bulwark-sshd.local"
    the_plan = s.plan({path: after}, {path: before}, set(), secrets=frozenset({"cf_token"}))
    [diff] = the_plan.diffs()
    assert diff["before"].endswith("cf_token = <redacted>\n") and diff["after"].endswith(
        "cf_token = <redacted>\n"
    )
    assert "value" not in diff["before"] + diff["after"]
