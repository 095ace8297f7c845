"""Check that every module, plugin and role says in which release it was added.

A `version_added` must be a version already released (a key of `releases` in changelogs/changelog.yaml) or
the version being prepared (galaxy.yml's `version`): antsibull-changelog lists a new module or role in the
release whose version its `version_added` names, so a wrong one drops it from the release notes.
Options may carry their own `version_added`, checked the same way. `make lint` runs it.
"""

import argparse
import ast
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Not documented plugins: an action plugin is documented by its module, and module_utils, plugin_utils and
# doc_fragments are code and documentation shared by plugins.
UNDOCUMENTED_TYPES = {"module_utils", "plugin_utils", "doc_fragments", "action"}


def allowed_versions(root):
    current = str(yaml.safe_load((root / "galaxy.yml").read_text())["version"])
    changelog = root / "changelogs/changelog.yaml"
    released = (yaml.safe_load(changelog.read_text()).get("releases") or {}) if changelog.exists() else {}
    return {current, *map(str, released)}


def _documentation(path):
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets
        ):
            return yaml.safe_load(ast.literal_eval(node.value))
    return None


def _options(options, where):
    for name, option in (options or {}).items():
        yield f"{where} option {name}", option
        yield from _options(option.get("suboptions"), f"{where} option {name}")


def _check_doc(doc, where, allowed):
    version = doc.get("version_added")
    if version is None:
        yield f"{where}: no version_added"
    elif str(version) not in allowed:
        yield f"{where}: version_added {version} is neither released nor the current version"
    for option_where, option in _options(doc.get("options"), where):
        if "version_added" in option and str(option["version_added"]) not in allowed:
            yield (
                f"{option_where}: version_added {option['version_added']} is neither released"
                " nor the current version"
            )


def problems(root=ROOT):
    allowed = allowed_versions(root)
    found = []
    for path in sorted((root / "plugins").glob("*/*.py")):
        kind = path.parent.name
        if kind in UNDOCUMENTED_TYPES or path.name == "__init__.py":
            continue
        where = f"{kind} {path.stem}"
        try:
            doc = _documentation(path)
        except yaml.YAMLError as error:
            found.append(f"{where}: DOCUMENTATION is not YAML: {' '.join(str(error).split())}")
            continue
        if doc is None:
            found.append(f"{where}: no DOCUMENTATION")
            continue
        found.extend(_check_doc(doc, where, allowed))
    for role in sorted(p for p in (root / "roles").iterdir() if p.is_dir()):
        specs = role / "meta/argument_specs.yml"
        if not specs.exists():
            found.append(f"role {role.name}: no meta/argument_specs.yml, so no version_added")
            continue
        entry_points = (yaml.safe_load(specs.read_text()) or {}).get("argument_specs") or {}
        for entry, doc in entry_points.items():
            found.extend(_check_doc(doc or {}, f"role {role.name} entry point {entry}", allowed))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    found = problems(args.root)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"allowed versions: {', '.join(sorted(allowed_versions(args.root)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
