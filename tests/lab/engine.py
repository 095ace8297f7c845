"""A Docker engine to run the lab on: the running one, or Debian's docker.io started here."""

import os
import shutil
import subprocess
import sys
import time

import docker
from docker.errors import DockerException


def _connect():
    try:
        client = docker.from_env()
        client.ping()
        return client
    except DockerException:
        return None


def _is_debian_root():
    return os.geteuid() == 0 and os.path.exists("/etc/debian_version")


def ensure_engine(log=print):
    """Return a client for a running engine; install and start Debian's if none runs."""
    client = _connect()
    if client:
        return client
    if not shutil.which("dockerd"):
        if not _is_debian_root():
            sys.exit(
                "lab: no Docker engine answers and this is not Debian as root: "
                "start a Docker engine (or install Debian's docker.io) and try again"
            )
        log("lab: installing Debian's docker.io")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io"],
            check=True,
            env=env,
        )
    if os.geteuid() != 0:
        sys.exit("lab: dockerd is installed but not running; start it (as root) and try again")
    log("lab: starting dockerd")
    with open("/var/log/dockerd.log", "ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
    for _unused in range(60):
        client = _connect()
        if client:
            return client
        time.sleep(1)
    sys.exit("lab: dockerd did not answer within 60 s; see /var/log/dockerd.log")
