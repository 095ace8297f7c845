"""Code a maintainer reads at a glance (issue 20): no module over 200 lines of code (DOCUMENTATION, EXAMPLES
and RETURN, blank lines and comments not counted), no function over 60 lines anywhere in plugins/."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
MODULE_LINES, FUNCTION_LINES = 200, 60
DOCS = {"DOCUMENTATION", "EXAMPLES", "RETURN"}


def module_code_lines(source):
    tree = ast.parse(source)
    docs = sum(
        node.end_lineno - node.lineno + 1
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in DOCS for t in node.targets)
    )
    code = [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]
    return len(code) - docs


def test_no_module_over_200_lines_of_code():
    over = {
        path.relative_to(ROOT).as_posix(): lines
        for path in sorted((PLUGINS / "modules").glob("*.py"))
        if (lines := module_code_lines(path.read_text(encoding="utf-8"))) > MODULE_LINES
    }
    assert not over, f"modules over {MODULE_LINES} lines of code: {over}"


def test_no_function_over_60_lines():
    over = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    over.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not over, "functions over 60 lines:\n" + "\n".join(over)
