"""Render CHANGELOG.rst for the version being prepared, from the fragments, without releasing it.

`antsibull-changelog release` consumes the fragments and records a release in changelogs/changelog.yaml;
until the real release, this runs it on a scratch copy laid out as ansible_collections/bulwark/hardening
(antsibull-changelog finds the new modules and roles with ansible-doc there) and keeps only CHANGELOG.rst.
`--check` fails when the committed CHANGELOG.rst differs from what the fragments and the modules' and roles'
`version_added` give (`make lint` runs it), so the release notes cannot drift from the tree.
"""

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ["galaxy.yml", "changelogs", "plugins", "roles", "meta", "playbooks"]


def _tracked(root):
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard", "--", *CONTENT],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [path for path in listed.split("\0") if path and (root / path).is_file()]


def render(root=ROOT):
    with tempfile.TemporaryDirectory(prefix="changelog-") as scratch:
        copy = Path(scratch) / "ansible_collections/bulwark/hardening"
        for path in _tracked(root):
            (copy / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / path, copy / path)
        (copy / "changelogs/.plugin-cache.yaml").unlink(missing_ok=True)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=scratch, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
        env.pop("ANSIBLE_CONFIG", None)
        release = subprocess.run(
            [str(Path(sys.executable).with_name("antsibull-changelog")), "release", "--reload-plugins"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if release.returncode != 0:
            # Usually a module whose DOCUMENTATION ansible-doc cannot read.
            sys.exit(
                f"antsibull-changelog release failed:\n{release.stdout}{release.stderr}"
                "Does `ansible-doc` read every module (python tools/version_added.py names those it cannot)?"
            )
        return (copy / "CHANGELOG.rst").read_text()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if CHANGELOG.rst is out of date")
    args = parser.parse_args(argv)
    rendered = render()
    target = ROOT / "CHANGELOG.rst"
    if not args.check:
        target.write_text(rendered)
        return 0
    current = target.read_text() if target.exists() else ""
    if current == rendered:
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            current.splitlines(True), rendered.splitlines(True), "CHANGELOG.rst", "from the fragments"
        )
    )
    print("CHANGELOG.rst is out of date: run `make changelog`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
