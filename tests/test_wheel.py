"""The package installs with its data: a wheel (a plain ``pip install``) and an editable install
of this repository both load the shipped suite, in a fresh virtual environment.

The fresh environment sees the current environment's dependencies (torch, transformers, ...)
through a ``.pth`` file holding the path of its site-packages. A plain path line in a ``.pth``
file adds that folder to ``sys.path`` without executing the ``.pth`` files in it, so the current
environment's own (editable) install of taskneuron_utils does not shadow the one under test.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
N_TASKS = 24

CHECK = """
import json, sys
import taskneuron_utils as tn
from taskneuron_utils.tasks import default_data_dir
suite = tn.load_tasks()
name = next(iter(suite))
json.dump({"file": tn.__file__, "data_dir": str(default_data_dir()), "n_tasks": len(suite),
           "name": name, "n_train": len(suite[name].train)}, sys.stdout)
"""


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _copy_source(dst: Path) -> Path:
    """What a build reads, copied so that building never writes build/ or *.egg-info into the
    working tree (which others may be using)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", *(p.name for p in ROOT.glob("LICEN[CS]E*"))):
        shutil.copy2(ROOT / name, dst / name)
    for name in ("taskneuron_utils", "data"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    return dst


def _pip(*args: str) -> list[str]:
    """pip of the current environment; offline with the installed setuptools when it has one
    (Python 3.12+ venvs do not include setuptools: then pip builds in an isolated environment)."""
    offline = (
        ["--no-build-isolation", "--no-index"]
        if importlib.util.find_spec("setuptools") is not None
        else []
    )
    return [sys.executable, "-m", "pip", *args, *offline, "--disable-pip-version-check"]


def _fresh_venv(path: Path) -> Path:
    """A virtual environment without pip or packages; returns its python."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    return path / "bin" / "python" if os.name != "nt" else path / "Scripts" / "python.exe"


def _see_current_dependencies(python: Path) -> None:
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site.stdout.strip()) / "_current_env_deps.pth").write_text("\n".join(ours) + "\n")


def _check(python: Path, cwd: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TASKNEURON_DATA", "PYTHONPATH", "PYTHONHOME")
    }
    # -I: no current folder on sys.path, no PYTHON* variables, no user site-packages.
    done = _run([str(python), "-I", "-c", CHECK], cwd=cwd, env=env, timeout=600)
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wheel", "editable"])
def test_installed_package_loads_the_shipped_suite(mode, tmp_path):
    pip_version = tuple(int(x) for x in importlib.metadata.version("pip").split(".")[:2])
    if pip_version < (22, 3):
        pytest.skip("pip --python needs pip >= 22.3")
    src = _copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    if mode == "wheel":
        # Built here, installed before the current environment becomes visible to the fresh
        # one: pip then never sees the current environment's taskneuron_utils.
        _run(_pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)), timeout=600)
        (wheel,) = (tmp_path / "dist").glob("taskneuron_utils-*.whl")
        _run(_pip("--python", str(python), "install", "--no-deps", str(wheel)), timeout=600)
        _see_current_dependencies(python)
    else:
        # pip runs in the fresh environment and builds with its setuptools: make the current
        # environment visible first, and --ignore-installed so that pip never touches (never
        # uninstalls) the current environment's taskneuron_utils.
        _see_current_dependencies(python)
        _run(
            _pip(
                "--python",
                str(python),
                "install",
                "--no-deps",
                "--ignore-installed",
                "-e",
                str(src),
            ),
            cwd=src,
            timeout=600,
        )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    found = _check(python, elsewhere)

    package = Path(found["file"]).resolve().parent
    data_dir = Path(found["data_dir"]).resolve()
    if mode == "wheel":
        assert package.is_relative_to(venv.resolve()), found  # the wheel, not this checkout
        assert data_dir == package / "_data", found
        # Every module made it into the wheel (pyproject.toml lists the subpackages by hand).
        modules = {p.relative_to(src).as_posix() for p in (src / "taskneuron_utils").rglob("*.py")}
        installed = {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py")}
        assert modules <= installed, f"not in the wheel: {sorted(modules - installed)}"
    else:
        assert package == (src / "taskneuron_utils").resolve(), found
        assert data_dir == (src / "data").resolve(), found
    assert not package.is_relative_to(ROOT), found
    assert found["n_tasks"] == N_TASKS and found["n_train"] > 0, found
