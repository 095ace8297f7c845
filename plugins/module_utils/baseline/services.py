"""The baseline's services: what to enable, start or disable, from one `systemctl show` (pure).

A unit that cannot run on this host is skipped with the reason, never silently: one whose start
condition fails here (timesyncd and chrony where the clock cannot be set, as in a container), or one
that fails to start inside a container (auditd and acct need kernel privileges a container lacks).
Anywhere else a unit that does not start is an error.
"""

import re

# The properties read for every unit, in one `systemctl show` call.
PROPERTIES = (
    "Id",
    "LoadState",
    "UnitFileState",
    "ActiveState",
    "ConditionResult",
    "ConditionTimestampMonotonic",
    "Requires",
)
_UNIT = re.compile(r"[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|path|target|mount)")
ENABLED = ("enabled", "enabled-runtime")


class ServiceSpecError(ValueError):
    """Bad input; the message names the option and index (enabled[2])."""


def validate(enabled, disabled):
    for option, units in (("enabled", enabled), ("disabled", disabled)):
        if not isinstance(units, list):
            raise ServiceSpecError(f"{option}: a list of unit names is required")
        for index, unit in enumerate(units):
            if not isinstance(unit, str) or not _UNIT.fullmatch(unit):
                raise ServiceSpecError(
                    f"{option}[{index}]: {unit!r} is not a unit name (such as auditd.service)"
                )
    both = sorted(set(enabled) & set(disabled))
    if both:
        raise ServiceSpecError(f"disabled: {both[0]} is also in enabled")
    return list(enabled), list(disabled)


def parse_show(output, units):
    """`systemctl show --property=... UNIT...` output (blocks in the order asked) -> {unit: {prop: value}}."""
    blocks = [block for block in output.strip().split("\n\n") if block.strip()] if output.strip() else []
    if len(blocks) != len(units):
        raise ServiceSpecError(f"systemctl show answered for {len(blocks)} of {len(units)} units")
    state = {}
    for unit, block in zip(units, blocks, strict=True):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        state[unit] = props
    return state


def plan(enabled, disabled, state, check_mode):
    """(actions, report): actions maps a unit to ["enable", "start"] or ["disable"]; report maps each
    unit to ("ok" | "changed" | "skipped" | "failed", what) as far as can be told before acting."""
    actions, report = {}, {}
    for unit in enabled:
        props = state[unit]
        if props.get("LoadState") == "not-found":
            if check_mode:
                report[unit] = ("changed", "would be installed, enabled and started")
            else:
                report[unit] = ("failed", "is not installed")
            continue
        todo = []
        if props.get("UnitFileState") not in ENABLED:
            todo.append("enable")
        if props.get("ActiveState") != "active":
            todo.append("start")
        actions[unit] = todo
        report[unit] = ("changed", " ".join(todo)) if todo else ("ok", "")
    for unit in disabled:
        props = state[unit]
        if props.get("UnitFileState") in ENABLED or props.get("ActiveState") == "active":
            actions[unit] = ["disable"]
            report[unit] = ("changed", "disabled and stopped")
        else:
            report[unit] = ("ok", "")
    return actions, report


def requirements(props):
    """The units a unit's start requires (its Requires=, slices left out)."""
    return [unit for unit in props.get("Requires", "").split() if _UNIT.fullmatch(unit)]


def not_running(props, in_container, tried, why="", failed_requirements=()):
    """The report for an enabled unit that is not active: after a start was tried, or (check mode)
    predicted from how it fared here before (a unit that failed in a container will fail again, and so
    will one whose required unit failed there: Debian 13's auditd needs audit-rules.service)."""
    if in_container and failed_requirements:
        return ("skipped", "cannot run inside a container: " + ", ".join(failed_requirements) + " failed")
    # ConditionResult is "no" too for a unit whose conditions were never checked (never started).
    checked = props.get("ConditionTimestampMonotonic", "0") not in ("", "0")
    if props.get("ConditionResult") == "no" and (checked or tried):
        return ("skipped", "its start condition is not met here (e.g. no clock control in a container)")
    if in_container and (tried or props.get("ActiveState") == "failed"):
        return ("skipped", "cannot run inside a container" + (f": {why}" if why else ""))
    if tried:
        return ("failed", "does not start")
    return ("changed", "would be started")
