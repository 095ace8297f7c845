"""host/docker.py: one probe, one spelling."""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import docker


@pytest.mark.parametrize(("option", "socket", "expected"), [
    ("always", False, True), ("never", True, False), ("auto", True, True), ("auto", False, False),
])  # fmt: skip
def test_the_option_resolves_on_the_host(monkeypatch, option, socket, expected):
    monkeypatch.setattr(docker.files, "exists", lambda path: socket and path == "/var/run/docker.sock")
    assert docker.wanted(option) is expected


@pytest.mark.parametrize("option", ["true", "false", True, "yes", ""])
def test_another_spelling_is_refused_by_name(option):
    with pytest.raises(ValueError, match="docker must be one of auto, always, never"):
        docker.wanted(option)
