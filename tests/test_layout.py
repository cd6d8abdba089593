"""The package's layout: dependencies point one way through the method's flow, and every module stays small
enough to read (STYLE.md: one job per module, about 300 lines at most)."""

import ast

from conftest import REPO

PACKAGE = REPO / "prkd"
#: A module may import from its own level and below, never from above.
LEVELS = {"utils": 0, "presets": 0, "config": 0, "data": 1, "metrics": 2, "physics": 2, "nets": 2, "classical": 3, "registry": 3,
          "interop": 4, "learning": 4, "fabrication": 5, "experiments": 5, "views": 6, "reproduce": 7, "cli": 8, "__main__": 8,
          "__init__": 8}


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _group(path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prkd."):
            yield node.lineno, node.module.split(".")[1]


def test_imports_point_down_the_method_flow():
    unknown = [str(p.relative_to(REPO)) for p in _modules() if _group(p) not in LEVELS]
    assert not unknown, f"a new top-level part of prkd needs a level in LEVELS: {unknown}"
    upward = [f"{p.relative_to(REPO)}:{line} imports prkd.{target}" for p in _modules()
              for line, target in _imports(p) if LEVELS.get(target, -1) > LEVELS[_group(p)]]
    assert not upward, "imports from a later stage of the flow:\n" + "\n".join(upward)


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(REPO)): p.read_text().count("\n") for p in _modules()}
    assert not {k: v for k, v in long.items() if v > 300}, "split these by job"


def test_the_layout_test_sees_an_upward_import(tmp_path):
    """The direction check can fail: a physics module importing from learning is caught."""
    fake = tmp_path / "optics.py"
    fake.write_text("from prkd.learning.train import get_or_train\n")
    assert [target for _, target in _imports(fake)] == ["learning"]
    assert LEVELS["learning"] > LEVELS["physics"]
