from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import services
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline.services import ServiceSpecError

FIXTURES = Path(__file__).parent / "fixtures"
# The units of systemctl-show-bookworm-bare.txt, in the order asked (a bare Debian 12 lab host).
BARE_UNITS = ["ssh.service", "auditd.service", "cron.service", "systemd-timesyncd.service"]


def bare():
    return services.parse_show((FIXTURES / "systemctl-show-bookworm-bare.txt").read_text(), BARE_UNITS)


def test_parse_show_reads_one_block_per_unit_in_the_order_asked():
    state = bare()
    assert state["ssh.service"]["ActiveState"] == "active"
    assert state["ssh.service"]["UnitFileState"] == "enabled"
    assert state["auditd.service"]["LoadState"] == "not-found"
    with pytest.raises(ServiceSpecError, match="systemctl show answered for 4 of 3 units"):
        services.parse_show((FIXTURES / "systemctl-show-bookworm-bare.txt").read_text(), BARE_UNITS[:3])


def test_on_a_bare_host_check_mode_predicts_the_install_and_a_real_run_fails_naming_the_unit():
    state = bare()
    actions, report = services.plan(
        ["ssh.service", "auditd.service"], ["cron.service"], state, check_mode=True
    )
    assert actions == {"ssh.service": []}
    assert report == {
        "ssh.service": ("ok", ""),
        "auditd.service": ("changed", "would be installed, enabled and started"),
        "cron.service": ("ok", ""),
    }
    _actions, report = services.plan(["auditd.service"], [], state, check_mode=False)
    assert report == {"auditd.service": ("failed", "is not installed")}


def test_an_enabled_running_unit_in_disabled_is_disabled_and_stopped():
    actions, report = services.plan([], ["ssh.service"], bare(), check_mode=False)
    assert actions == {"ssh.service": ["disable"]}
    assert report == {"ssh.service": ("changed", "disabled and stopped")}


def unit(**props):
    base = {
        "LoadState": "loaded",
        "UnitFileState": "enabled",
        "ActiveState": "active",
        "ConditionResult": "yes",
    }
    return {**base, "ConditionTimestampMonotonic": "14753737922", **props}


def test_a_unit_neither_enabled_nor_running_gets_both():
    state = {"acct.service": unit(UnitFileState="disabled", ActiveState="inactive")}
    actions, report = services.plan(["acct.service"], [], state, check_mode=False)
    assert actions == {"acct.service": ["enable", "start"]}
    assert report == {"acct.service": ("changed", "enable start")}


@pytest.mark.parametrize(
    ("props", "in_container", "tried", "expected"),
    [
        # timesyncd in a container: its condition (clock control) was checked and failed.
        (
            unit(ActiveState="inactive", ConditionResult="no"),
            True,
            False,
            ("skipped", "its start condition is not met here (e.g. no clock control in a container)"),
        ),
        # Installed and never started: its conditions were never checked, so it would be started.
        (
            unit(ActiveState="inactive", ConditionResult="no", ConditionTimestampMonotonic="0"),
            True,
            False,
            ("changed", "would be started"),
        ),
        # auditd in a container: it failed here before, it fails again.
        (unit(ActiveState="failed"), True, False, ("skipped", "cannot run inside a container")),
        (unit(ActiveState="failed"), True, True, ("skipped", "cannot run inside a container")),
        # On a VM the same failure is an error.
        (unit(ActiveState="failed"), False, True, ("failed", "does not start")),
        (unit(ActiveState="inactive"), False, False, ("changed", "would be started")),
    ],
)
def test_a_unit_that_does_not_run_is_skipped_only_where_the_host_cannot_run_it(
    props, in_container, tried, expected
):
    assert services.not_running(props, in_container, tried) == expected


def test_the_journal_line_is_part_of_a_container_skip():
    outcome = services.not_running(unit(ActiveState="failed"), True, True, why="The audit daemon is exiting.")
    assert outcome == ("skipped", "cannot run inside a container: The audit daemon is exiting.")


@pytest.mark.parametrize(
    ("enabled", "disabled", "message"),
    [
        (["auditd.service", "cups service"], [], r"enabled\[1\]: 'cups service' is not a unit name"),
        ([], ["avahi-daemon"], r"disabled\[0\]: 'avahi-daemon' is not a unit name"),
        (["cups.service"], ["cups.service"], r"disabled: cups.service is also in enabled"),
        ("auditd.service", [], r"enabled: a list of unit names is required"),
    ],
)
def test_bad_unit_names_are_refused_naming_the_option(enabled, disabled, message):
    with pytest.raises(ServiceSpecError, match="^" + message):
        services.validate(enabled, disabled)


def test_a_unit_whose_required_unit_failed_in_a_container_is_predicted_skipped():
    # Debian 13's auditd stays inactive (dependency failed) when audit-rules.service cannot load rules.
    props = unit(ActiveState="inactive", Requires="audit-rules.service system.slice")
    assert services.requirements(props) == ["audit-rules.service"]
    expected = ("skipped", "cannot run inside a container: audit-rules.service failed")
    assert services.not_running(props, True, False, failed_requirements=["audit-rules.service"]) == expected
    assert services.not_running(props, True, True, failed_requirements=["audit-rules.service"]) == expected
    # Outside a container the same unit is started (check mode: predicted so) and fails loudly if it does not.
    assert services.not_running(props, False, False, failed_requirements=["audit-rules.service"]) == (
        "changed",
        "would be started",
    )
