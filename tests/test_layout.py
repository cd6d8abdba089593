"""The package's layout: dependencies point one way through the method's flow, and every module stays small
enough to read (STYLE.md: one job per module, about 300 lines at most)."""

import ast

from conftest import REPO

PACKAGE = REPO / "prkd"
#: A module may import from its own level and below, never from above.
LEVELS = {"utils": 0, "presets": 0, "config": 0, "config_checks": 0, "data": 1,
          "metrics": 2, "phase_images": 2, "physics": 2, "nets": 2, "classical": 3, "registry": 3,
          "checks": 3, "interop": 4, "learning": 4, "fabrication": 5, "execution": 5, "experiments": 5,
          "views": 6, "reproduce": 7,
          "cli": 8, "__main__": 8, "__init__": 8}


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


def _module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path, modules: set[str]) -> set[str]:
    """The prkd modules ``path`` imports at run time, at module level or inside functions (not under
    ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") ==
              "TYPE_CHECKING" for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        from_prkd = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prkd")
        if id(node) in hidden or not from_prkd:
            continue
        out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
        out |= {node.module} & modules
    return out


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan's strongly connected
    components of more than one module)."""
    index, low, stack, cycles = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_modules_import_each_other():
    """Within a layer too: no module imports one that (through others) imports it back, even inside a
    function."""
    modules = {_module_name(p): p for p in _modules()}
    edges = {m: _runtime_imports(p, set(modules)) - {m} for m, p in modules.items()}
    assert import_cycles(edges) == [], "modules that import each other"


def test_the_cycle_check_can_fail(tmp_path):
    fake = tmp_path / "graph.py"
    fake.write_text("def run():\n    from prkd.execution.dask_runner import DaskExecutor\n")
    found = _runtime_imports(fake, {"prkd.execution.dask_runner"})
    assert found == {"prkd.execution.dask_runner"}  # an import inside a function counts
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(REPO)): p.read_text().count("\n") for p in _modules()}
    assert not {k: v for k, v in long.items() if v > 300}, "split these by job"


def test_the_layout_test_sees_an_upward_import(tmp_path):
    """The direction check can fail: a physics module importing from learning is caught."""
    fake = tmp_path / "optics.py"
    fake.write_text("from prkd.learning.train import get_or_train\n")
    assert [target for _, target in _imports(fake)] == ["learning"]
    assert LEVELS["learning"] > LEVELS["physics"]


#: Modules that start processes of their own: the process-pool executor only (a plan's workers).
PROCESS_STARTERS = {"prkd.execution.executors"}


def _starts_processes(path) -> bool:
    """Whether a module imports subprocess, multiprocessing or concurrent.futures (anywhere in it)."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] in ("subprocess", "multiprocessing") or n.startswith("concurrent")
               for n in names):
            return True
    return False


def test_only_the_process_pool_starts_worker_processes(tmp_path):
    """No subprocess shards outside ``executors.ProcessPool``; and the check can fail."""
    assert {_module_name(p) for p in _modules() if _starts_processes(p)} == PROCESS_STARTERS
    fake = tmp_path / "study.py"
    fake.write_text("def launch():\n    import subprocess\n")
    assert _starts_processes(fake)


def test_every_module_is_listed_in_docs_package_md():
    """docs/package.md is the package's map: a module it does not name is one a reader cannot find."""
    text = (REPO / "docs" / "package.md").read_text()
    missing = [str(path.relative_to(PACKAGE)) for path in _modules() if path.name != "__init__.py"
               and str(path.relative_to(PACKAGE)) not in text and f"`{path.name}`" not in text]
    assert not missing, f"modules missing from docs/package.md: {', '.join(missing)}"
