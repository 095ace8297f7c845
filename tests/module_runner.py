"""Run one of the collection's modules as Ansible runs it on a host, with faults injected on request.

    python module_runner.py MODULE ARGS.json

ARGS.json is what Ansible sends ({"ANSIBLE_MODULE_ARGS": {...}}); the result is the module's JSON on
stdout. Every host operation the module performs through the host layer (a file written, removed or
renamed, a directory made private, a command run) is counted, outermost calls only, and listed one a line
in $BULWARK_OPS_LOG when set. $BULWARK_FAULT picks one of them by number (1 = the first):

- `kill:N`  the module dies (SIGKILL) just before operation N, as a run cut by a lost connection or an
  operator's Ctrl-C on the host would leave it;
- `fail:N`  operation N fails as the host would fail it (a HostError, an OSError, a command with rc 1).
"""

import errno
import os
import runpy
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import collection_path

# A module on a host imports the collection as plain packages (AnsiballZ has no collection loader), and
# the loader costs half a second a run: the kill-and-fail harnesses run modules hundreds of times.
sys.path.insert(0, str(collection_path.COLLECTIONS))

from ansible_collections.bulwark.hardening.plugins.module_utils.host import (
    commands,
    commit_confirm,
    files,
)

OPS_LOG = os.environ.get("BULWARK_OPS_LOG")
FAULT_KIND, _SEPARATOR, FAULT_AT = (os.environ.get("BULWARK_FAULT") or "").partition(":")
FAULT_AT = int(FAULT_AT) if FAULT_AT else 0
_count = 0
_depth = 0


def _describe(name, args):
    first = args[0] if args else ""
    if name == "run":
        first = args[1] if len(args) > 1 else ""
        return "run " + " ".join(str(a) for a in first)
    return f"{name} {first}"


def counted(name, original, failure):
    def wrapper(*args, **kwargs):
        global _count, _depth  # noqa: PLW0603
        if _depth:
            return original(*args, **kwargs)
        _count += 1
        what = _describe(name, args)
        if OPS_LOG:
            with open(OPS_LOG, "a", encoding="utf-8") as handle:
                handle.write(f"{_count}\t{what}\n")
        if _count == FAULT_AT and FAULT_KIND == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if _count == FAULT_AT and FAULT_KIND == "fail":
            return failure(what, args, kwargs)
        _depth += 1
        try:
            return original(*args, **kwargs)
        finally:
            _depth -= 1

    return wrapper


def host_error(what, _args, _kwargs):
    raise files.HostError(f"injected failure of {what}")


def os_error(what, _args, _kwargs):
    raise OSError(errno.EIO, f"injected failure of {what}")


def failed_command(what, args, kwargs):
    argv = args[1]
    if kwargs.get("check"):
        raise files.HostError(f"{kwargs.get('what') or argv[0]} failed (rc=1): injected failure")
    return 1, "", f"injected failure of {what}"


for _name in ("write", "remove", "private_dir", "set_attributes", "directory"):
    setattr(files, _name, counted(_name, getattr(files, _name), host_error))
commands.Runner.run = counted("run", commands.Runner.run, failed_command)
# The protocol's own renames (armed -> confirmed) go through os.rename in commit_confirm only.
commit_confirm.os = type(
    "os_with_counted_rename",
    (),
    {"__getattr__": staticmethod(lambda name: getattr(os, name))},
)()
commit_confirm.os.rename = counted("rename", os.rename, os_error)

if __name__ == "__main__":
    module, args_path = sys.argv[1], sys.argv[2]
    sys.argv = [module, args_path]
    runpy.run_module(
        f"ansible_collections.bulwark.hardening.plugins.modules.{module}", run_name="__main__", alter_sys=True
    )
