"""The collection's one path check (plain_path) and its boolean form."""

import shlex

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.text import (
    NAME_MAX,
    PATH_MAX,
    plain_absolute_path,
    plain_path,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/etc/wireguard", "/etc/wireguard"),
        ("/etc/wireguard/", "/etc/wireguard"),
        ("/var/lib/bulwark/keys-1.0_a@b+c", "/var/lib/bulwark/keys-1.0_a@b+c"),
        ("/", "/"),
        ("/.hidden/x..y", "/.hidden/x..y"),
    ],
)
def test_plain_paths_are_accepted_and_normalised(value, expected):
    assert plain_path(value, "overlay_key_dir") == expected


@pytest.mark.parametrize(
    "value, said",
    [
        ("/srv/x;touch /srv/pwned", "';'"),
        ("/srv/$(id)", "'$'"),
        ("/srv/`id`", "'`'"),
        ("/srv/a b", "' '"),
        ("/srv/a\nPostUp = id", "control character ('\\n')"),
        ("/srv/a\tb", "control character ('\\t')"),
        ("/srv/\x00", "control character"),
        ("/srv/a'b", '"\'"'),
        ('/srv/a"b', "'\"'"),
        ("/srv/a\\b", "'\\\\'"),
        ("/srv/a|b", "'|'"),
        ("/srv/a&b", "'&'"),
        ("/srv/a>b", "'>'"),
        ("/srv/*", "'*'"),
        ("/srv/a#b", "'#'"),
        ("/run/%i", "'%'"),
        ("/a:b", "':'"),
        ("/srv/é", "'é'"),
        ("/srv/a\u2028b", "'\\u2028'"),
        ("relative/path", "not an absolute path"),
        ("~/keys", "not an absolute path"),
        ("", "not a path"),
        ("/etc/../ssh", "'..'"),
        ("/etc/./ssh", "'..'"),
        ("/etc//ssh", "empty"),
        ("//etc", "empty"),
        ("/etc/wireguard//", "empty"),
        ("/" + "a" * (NAME_MAX + 1), f"longer than {NAME_MAX}"),
        ("/a" * (PATH_MAX // 2 + 1), f"longer than {PATH_MAX}"),
    ],
)
def test_anything_else_is_refused_naming_the_option(value, said):
    with pytest.raises(ValueError) as err:
        plain_path(value, "members[3].key_dir")
    msg = str(err.value)
    assert msg.startswith("members[3].key_dir: ")
    assert said in msg
    assert msg.endswith("Nothing was applied")


@pytest.mark.parametrize("value", [None, 3, True, ["/etc"], b"/etc"])
def test_a_value_that_is_not_a_string_is_refused(value):
    with pytest.raises(ValueError, match=r"^opt: .* is not a path"):
        plain_path(value, "opt")


@settings(max_examples=200)
@given(st.text(max_size=40))
@example("/srv/x;touch /srv/pwned")
@example("/$(id)")
@example("/a\n/b")
@example("/a b")
@example("/../etc")
@example("/a/'b'")
def test_an_accepted_path_is_one_shell_token_and_one_line(value):
    try:
        path = plain_path(value, "opt")
    except ValueError:
        return
    assert shlex.split(path) == [path]
    assert shlex.quote(path) == path  # nothing in it that a shell would read
    assert "\n" not in path and "//" not in path
    assert ".." not in path.split("/")


def test_the_boolean_form_keeps_its_meaning():
    assert plain_absolute_path("/usr/bin/bash")
    assert not plain_absolute_path("/usr/bin/")  # a trailing '/' is not the plain form
    assert not plain_absolute_path("/")
    assert not plain_absolute_path("/usr/../bin")
    assert not plain_absolute_path("/usr/bin/a b")
    assert not plain_absolute_path(None)
