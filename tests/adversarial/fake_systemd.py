"""systemd-run and systemctl for the adversarial suite, where systemd is not PID 1.

Installed as two wrappers, `systemd-run` and `systemctl` (`exec python fake_systemd.py NAME "$@"`), in a
directory put first on PATH. `systemd-run --unit=U ... CMD...`
records CMD as the timer of U instead of starting it: the test fires it itself (`FakeSystemd.fire`).
`systemctl stop U.timer` forgets it. Any other `systemctl VERB UNIT` runs the hook
`$BULWARK_FAKE_SYSTEMD/hooks/VERB-UNIT` when the test put one there (a reload that really signals a
daemon, a failing enable), else succeeds; `is-active` without a hook answers "inactive" (3).
Every call is appended to `$BULWARK_FAKE_SYSTEMD/calls` (one JSON list a line).
"""

import json
import os
import subprocess
import sys

STATE = os.environ["BULWARK_FAKE_SYSTEMD"]


def log(argv):
    with open(os.path.join(STATE, "calls"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(argv) + "\n")


def systemd_run(args):
    unit, command = None, []
    for n, arg in enumerate(args):
        if arg.startswith("--unit="):
            unit = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            command = args[n:]
            break
    if not unit or not command:
        print("fake systemd-run: needs --unit= and a command", file=sys.stderr)
        return 1
    path = os.path.join(STATE, "timers", unit + ".timer")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"args": args, "command": command}, handle)
    return 0


def systemctl(args):
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return 0
    verb, units = words[0], words[1:]
    for unit in units:
        hook = os.path.join(STATE, "hooks", f"{verb}-{unit}")
        if os.access(hook, os.X_OK):
            rc = subprocess.run([hook, *args], check=False).returncode
            if rc:
                return rc
        elif verb == "stop" and unit.endswith(".timer"):
            try:
                os.unlink(os.path.join(STATE, "timers", unit))
            except FileNotFoundError:
                pass
        elif verb == "is-active":
            return 3
    return 0


def main():
    name, args = sys.argv[1], sys.argv[2:]
    log([name, *args])
    return systemd_run(args) if name == "systemd-run" else systemctl(args)


if __name__ == "__main__":
    sys.exit(main())
