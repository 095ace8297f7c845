"""The options shared by firewall, sshd_config and commit_confirm: one name and one default each."""

from ansible_collections.bulwark.hardening.plugins.module_utils import specs
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall.spec import (
    ARGUMENT_SPEC as FIREWALL,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall.spec import docker_option
from ansible_collections.bulwark.hardening.plugins.module_utils.host import docker
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.spec import ARGUMENT_SPEC as SSHD


def test_the_shared_options_are_the_same_in_both_modules():
    for name in ("rollback_timeout", "reconnect_and_confirm", "guard"):
        assert FIREWALL[name] == SSHD[name] == specs.changing_the_connection()[name]
    assert FIREWALL["rollback_timeout"]["default"] == specs.ROLLBACK_TIMEOUT


def test_the_controllers_connection_has_one_name_in_both_modules():
    for shared, own in (
        ("controller_address", "connecting_from"),
        ("controller_local_address", "local_address"),
        ("controller_port", "local_port"),
    ):
        assert FIREWALL[shared]["type"] == SSHD[own]["type"]
        assert SSHD[own]["aliases"] == [shared]  # sshd_config's own name, named in its messages


def test_commit_confirm_confirms_the_concerns_that_arm():
    assert specs.concern()["concern"]["choices"] == ["sshd", "firewall"]


def test_the_docker_option_has_one_spelling_and_the_old_one_maps_onto_it():
    assert [docker_option(value) for value in ("auto", "always", "never")] == list(docker.CHOICES)
    assert docker_option("true") == docker_option("True") == "always"
    assert docker_option("false") == docker_option("False") == "never"
    assert set(FIREWALL["docker"]["choices"]) >= set(docker.CHOICES)
