"""The harness itself: private namespaces only, links that carry traffic, timers the test fires, kills."""

import os
import subprocess
import sys

from conftest import _namespace, outside_process


def test_runs_in_private_network_and_mount_namespaces():
    outside = outside_process()
    assert outside is not None
    assert _namespace("net") != _namespace("net", outside)
    assert _namespace("mnt") != _namespace("mnt", outside)


def test_refuses_to_run_in_the_machines_namespaces():
    """The same suite started without run.sh stops before any test, naming the shared namespaces."""
    done = subprocess.run(
        [
            "nsenter",
            "--target",
            str(outside_process()),
            "--net",
            "--mount",
            "--",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            os.path.join(os.path.dirname(__file__), "test_harness.py"),
            "-k",
            "private_network",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.getcwd(),
    )
    assert done.returncode != 0
    assert "shares the network and mount namespaces" in done.stdout + done.stderr


def test_a_link_carries_traffic_between_namespaces(netns, link):
    host, controller = netns(), netns()
    link(host, controller)
    server = host.popen(
        [sys.executable, "-m", "http.server", "--bind", "10.231.0.1", "8008"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _attempt in range(50):
            if controller.connects("10.231.0.1", 8008):
                break
        assert controller.connects("10.231.0.1", 8008)
        assert not controller.connects("10.231.0.1", 8009)
    finally:
        server.kill()


def test_module_runner_counts_operations_and_kills_at_one(run_module, fake_systemd, state_root):
    args = {"concern": "firewall"}
    clean = run_module("commit_confirm", args, env=fake_systemd.env())
    assert clean.rc == 0, clean
    assert clean.result["changed"] is False
    killed = run_module("commit_confirm", args, env=fake_systemd.env(), fault="kill:1")
    assert killed.killed, killed
    assert killed.result is None
