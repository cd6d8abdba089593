"""environment.yml (conda) and pyproject.toml must name the same pinned dependencies."""

import tomllib

import yaml

from conftest import REPO


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = set(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs |= set(extra)
    return reqs


def test_environment_yml_and_pyproject_agree():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    pins = {p for p in pip_section if not p.startswith("-e")}
    assert pins == _pyproject_requirements()
    assert any(p.startswith("-e") for p in pip_section), "environment.yml must install the package itself"


def test_every_dependency_is_pinned_exactly():
    for req in _pyproject_requirements():
        assert "==" in req, f"{req} is not pinned to an exact version"
