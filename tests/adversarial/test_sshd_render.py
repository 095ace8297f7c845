"""The sshd drop-in renderer against the real sshd: every value the renderer accepts is read back by
`sshd -T` as exactly the word(s) meant, under the keyword meant, and changes no other keyword; every
value it refuses is refused naming the keyword (or the Match block).

sshd reads a temporary tree (a main config that Includes the drop-in, a host key made once per session);
nothing of the machine's /etc/ssh is used.
"""

import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.render import RenderError, render

# Characters sshd's line reader treats specially, with shell and sshd-keyword payloads around them.
SPECIAL = [*" \"'\\#=%$`;|&()*?!@,:/\t\n\r\x00\x0b\x0c\x7f", "é", "\u2028", "\x85", "\xa0"]
TEXT = st.text(st.sampled_from(SPECIAL) | st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24)
PAYLOADS = [
    "\nPermitRootLogin yes",
    "x\nPermitRootLogin yes",
    "x\rPermitRootLogin yes",
    "Match all",
    "x #PermitRootLogin yes",
    "#",
    "# x",
    '"',
    "'",
    '"x" PermitRootLogin yes',
    "$(touch /tmp/x)",
    "`touch /tmp/x`",
    "%",
    "%x",
    "100%",
    "%%",
    "%h/%u",
    "\\",
    'a\\"b',
    "=x",
    "a b",
    "x\x00y",
]
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Sshd:
    """A temporary sshd configuration tree: main config (Include first, a host key), one drop-in."""

    def __init__(self, root):
        self.root = root
        (root / "d").mkdir()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "hostkey")],
            check=True,
            capture_output=True,
        )
        self.main = root / "sshd_config"
        self.main.write_text(f"Include {root}/d/*.conf\nHostKey {root}/hostkey\n")
        self.dropin = root / "d" / "bulwark.conf"
        self.baseline = self.effective("")

    def run(self, text, spec=None):
        self.dropin.write_text(text, encoding="utf-8")
        argv = ["sshd", "-T", "-f", str(self.main)] + (["-C", spec] if spec else [])
        return subprocess.run(argv, capture_output=True, check=False, cwd=self.root)

    def effective(self, text, spec=None):
        """sshd -T's lines for the drop-in `text` (it must be accepted)."""
        done = self.run(text, spec)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        # Split on line feeds only, as sshd writes them (splitlines would also break at U+2028).
        return done.stdout.decode("utf-8").split("\n")

    def changed(self, text, spec=None):
        """(lines gone, lines added) against the configuration without the drop-in."""
        after = self.effective(text, spec)
        before = self.baseline if spec is None else self.effective("", spec)
        return [line for line in before if line not in after], [line for line in after if line not in before]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    return Sshd(tmp_path_factory.mktemp("sshd"))


def _rendered_or_refused(options, match=None, named=None):
    """The drop-in, or None when refused; a refusal must name the keyword (or block)."""
    try:
        return render(options, match)
    except RenderError as exc:
        assert named in str(exc), str(exc)
        return None


def hostile(argument):
    """@example for each of PAYLOADS, given as `argument`."""

    def decorate(test):
        for payload in PAYLOADS:
            test = example(**{argument: payload})(test)
        return test

    return decorate


@SETTINGS
@given(value=TEXT)
@hostile("value")
@example(value="/srv/chroot/%u")
@example(value="/srv/my chroot")
def test_a_single_value_reads_back_as_that_one_word(sshd, value):
    """ChrootDirectory (one word, %-tokens of its own): exactly the value, and no other keyword moves."""
    dropin = _rendered_or_refused({"ChrootDirectory": value}, named="ChrootDirectory")
    if dropin is None:
        return
    gone, added = sshd.changed(dropin)
    expected = value.strip(" ")
    if expected == "none":
        assert (gone, added) == ([], [])
    else:
        assert (gone, added) == (["chrootdirectory none"], [f"chrootdirectory {expected}"])


@SETTINGS
@given(items=st.lists(TEXT.filter(lambda t: "@" not in t), min_size=1, max_size=4))
@example(items=["alice", "#bob", "root"])
@example(items=["alice root", "x\nPermitRootLogin yes"])
@example(items=['"', "'", "\\", "=x", "Match", "all"])
def test_list_items_read_back_one_word_each(sshd, items):
    """DenyUsers as a list: one pattern per item, in order; '#' or a blank in an item never drops or adds
    one (a '#' that ended the line would let root in)."""
    dropin = _rendered_or_refused({"DenyUsers": items}, named="DenyUsers")
    if dropin is None:
        return
    gone, added = sshd.changed(dropin)
    assert gone == []
    assert added == [f"denyusers {item.strip(' ')}" for item in items]


@SETTINGS
@given(text=TEXT.filter(lambda t: "@" not in t))
@hostile("text")
@example(text="admins sftp")
@example(text="admins #wheel")
@example(text='admins "wheel')
def test_a_word_list_string_is_split_on_blanks_only(sshd, text):
    """AllowGroups as one string: its blank-separated words, each one group pattern, nothing else."""
    dropin = _rendered_or_refused({"AllowGroups": text}, named="AllowGroups")
    if dropin is None:
        return
    gone, added = sshd.changed(dropin)
    assert gone == []
    assert added == [f"allowgroups {word}" for word in text.strip(" ").split(" ") if word]


@SETTINGS
@given(items=st.lists(TEXT, min_size=1, max_size=3))
@example(items=["a b", "c#d"])
@example(items=["a,b"])
def test_comma_list_is_one_word(sshd, items):
    """LogVerbose (a comma-joined list): one word, the items joined by commas, no item holds a comma."""
    dropin = _rendered_or_refused({"LogVerbose": items}, named="LogVerbose")
    if dropin is None:
        return
    gone, added = sshd.changed(dropin)
    assert gone == []
    assert added == ["logverbose " + ",".join(item.strip(" ") for item in items)]


@SETTINGS
@given(text=TEXT)
@hostile("text")
@example(text="internal-sftp -d /srv/%u")
@example(text='echo "a b" # c')
@example(text="echo 'a")
@example(text="=true")
@example(text="#true")
@example(text="$(touch /tmp/x)")
@example(text="NONE")
def test_a_command_is_the_rest_of_the_line_verbatim(sshd, text):
    """ForceCommand (sshd keeps the rest of the line as the command): exactly the value, or refused."""
    dropin = _rendered_or_refused({"ForceCommand": text}, named="ForceCommand")
    if dropin is None:
        return
    gone, added = sshd.changed(dropin)
    if text.strip(" ").lower() == "none":  # sshd's own word for "no forced command" (its default)
        assert (gone, added) == ([], [])
    else:
        assert (gone, added) == (["forcecommand none"], [f"forcecommand {text.strip(' ')}"])


@SETTINGS
@given(
    criteria=st.one_of(
        TEXT,
        st.tuples(st.sampled_from(["User", "Group", "Address", "LocalPort", "Host", "all"]), TEXT).map(
            " ".join
        ),
    )
)
@example(criteria="User alice\nPermitRootLogin yes")
@example(criteria="User alice PermitRootLogin yes")
@example(criteria="all")
@example(criteria="All User x")
@example(criteria='User "a b"')
@example(criteria="User a=b")
@example(criteria="User a # c")
@example(criteria="User")
@example(criteria="Group sftp Address 10.0.0.0/8")
def test_match_criteria_never_leak_a_global_keyword(sshd, criteria):
    """A Match block either is refused (naming the block), or sshd rejects the criterion itself, or it
    leaves every global keyword as it was: its body stays inside the block."""
    dropin = _rendered_or_refused(
        {}, [{"criteria": criteria, "options": {"PermitTTY": False}}], named="match[0].criteria"
    )
    if dropin is None:
        return
    done = sshd.run(dropin)
    if done.returncode != 0:
        # sshd refuses the Match line itself (an address or port it cannot parse), never another line.
        message = done.stderr.decode("utf-8", "replace")
        assert "line 4:" in message or "Match" in message, message
        return
    if dropin.rstrip("\n").split("\n")[3] == "Match All":
        assert sshd.changed(dropin) == (["permittty yes"], ["permittty no"])  # All: everyone, as meant
    else:
        assert sshd.changed(dropin) == ([], [])


@SETTINGS
@given(name=st.from_regex(r"[a-z_][a-z0-9_-]{0,12}", fullmatch=True))
def test_match_user_applies_to_that_user_only(sshd, name):
    dropin = render({}, [{"criteria": f"User {name}", "options": {"PermitTTY": False}}])
    assert "permittty no" in sshd.effective(dropin, f"user={name},host=h,addr=192.0.2.1")
    assert "permittty yes" in sshd.effective(dropin, f"user={name}x,host=h,addr=192.0.2.1")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"PermitRootLogin": "no\nPermitRootLogin yes"}, "PermitRootLogin"),
        ({"AuthorizedKeysFile": ".ssh/%k"}, "AuthorizedKeysFile"),
        ({"AuthorizedKeysFile": "%h/keys%"}, "AuthorizedKeysFile"),
        ({"ChrootDirectory": "/srv/%d"}, "ChrootDirectory"),
        ({"ForceCommand": "echo 'unterminated"}, "ForceCommand"),
        ({"ForceCommand": "=true"}, "ForceCommand"),
        ({"Subsystem": ["sftp"]}, "Subsystem"),
        ({"KexAlgorithms": ["curve25519-sha256,diffie-hellman-group1-sha1"]}, "KexAlgorithms"),
    ],
)
def test_refusals_name_the_keyword(options, named):
    with pytest.raises(RenderError, match=named):
        render(options)


def test_a_hostile_value_never_sets_root_login(sshd):
    """The classic: a value that would end its line and set PermitRootLogin, in every keyword shape."""
    for options in (
        {"Banner": "/etc/issue.net PermitRootLogin yes"},
        {"AllowUsers": ["alice", "PermitRootLogin yes"]},
        {"AcceptEnv": "LANG #\nPermitRootLogin yes"},
        {"ChrootDirectory": '"/srv" PermitRootLogin yes'},
    ):
        dropin = _rendered_or_refused(options, named=next(iter(options)))
        if dropin is not None:
            assert "permitrootlogin yes" not in sshd.effective("PermitRootLogin no\n" + dropin)
