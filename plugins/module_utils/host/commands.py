"""Commands on the host: the one place the modules run them (C locale, output decoded)."""

from .files import HostError


class Runner:
    def __init__(self, module):
        self.module = module

    def which(self, name, required=False, dirs=("/usr/sbin", "/sbin")):
        """Absolute path of a tool, or None; with required, a HostError naming it."""
        found = self.module.get_bin_path(name, opt_dirs=list(dirs))
        if found is None and required:
            raise HostError(f"{name} is not installed on the host")
        return found

    def run(self, argv, data=None, check=False, what=None, env=None):
        """(rc, stdout, stderr); with check, a non-zero exit is a HostError naming `what`. env: variables
        for this command only (this process's own environment is never changed)."""
        rc, out, err = self.module.run_command(
            argv, data=data, binary_data=data is not None, environ_update={**(env or {}), "LC_ALL": "C"}
        )
        if check and rc != 0:
            detail = (err or out or "").strip()
            raise HostError(f"{what or argv[0]} failed (rc={rc}){': ' + detail if detail else ''}")
        return rc, out, err
