"""Is Docker here: the one probe, and the one spelling of the option that asks for it (auto/always/never)."""

from . import files

SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")
CHOICES = ("auto", "always", "never")


def running():
    """Docker's daemon answers on this host: one of its sockets exists."""
    return any(files.exists(path) for path in SOCKETS)


def wanted(option):
    """The option (auto/always/never) resolved on this host: True to treat Docker as present."""
    if option not in CHOICES:
        raise ValueError(f"docker must be one of {', '.join(CHOICES)}, not {option!r}")
    return option == "always" or (option == "auto" and running())


def settings(runner):
    """(daemon.json's text or None, `docker ps` names and published ports) when Docker's daemon is
    installed, else None."""
    if runner.which("dockerd") is None:
        return None
    ps = ""
    tool = runner.which("docker")
    if tool is not None:
        rc, out, _err = runner.run([tool, "ps", "--format", "{{.Names}} {{.Ports}}"])
        ps = out if rc == 0 else ""
    return files.read("/etc/docker/daemon.json"), ps
