"""The package installs with its data and its course: a wheel (a plain ``pip install``) and an
editable install of this repository both load the shipped suite and find the notebooks, in a
fresh virtual environment; from the wheel, ``taskneurons notebooks DIR`` copies the course into a
folder outside the repository, where notebook 00 executes.

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
from taskneuron_utils.io.course_files import course_dir, course_files
from taskneuron_utils.tasks import default_data_dir
suite = tn.load_tasks()
name = next(iter(suite))
json.dump({"file": tn.__file__, "data_dir": str(default_data_dir()), "n_tasks": len(suite),
           "name": name, "n_train": len(suite[name].train), "course_dir": str(course_dir()),
           "course": [p.name for p in course_files()]}, sys.stdout)
"""

# Run in the fresh environment: execute a notebook in its own folder on the kernel named
# argv[2] and print, from a cell appended to it, which python and which package the kernel used.
EXECUTE = """
import json, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient
path = Path(sys.argv[1])
notebook = nbformat.read(path, as_version=4)
notebook.cells.append(nbformat.v4.new_code_cell(
    "import json, sys, taskneuron_utils\\n"
    "print(json.dumps({'python': sys.executable, 'package': taskneuron_utils.__file__}))"))
NotebookClient(notebook, timeout=900, kernel_name=sys.argv[2],
               resources={"metadata": {"path": str(path.parent)}}).execute()
print(notebook.cells[-1].outputs[-1]["text"], end="")
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
    for name in ("taskneuron_utils", "data", "notebooks"):
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


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("TASKNEURON_DATA", "PYTHONPATH", "PYTHONHOME")
    }


def _check(python: Path, cwd: Path) -> dict:
    # -I: no current folder on sys.path, no PYTHON* variables, no user site-packages.
    done = _run([str(python), "-I", "-c", CHECK], cwd=cwd, env=_clean_env(), timeout=600)
    return json.loads(done.stdout)


def _pip_can_target_a_venv() -> None:
    pip_version = tuple(int(x) for x in importlib.metadata.version("pip").split(".")[:2])
    if pip_version < (22, 3):
        pytest.skip("pip --python needs pip >= 22.3")


def _install_wheel(tmp: Path) -> tuple[Path, Path, Path]:
    """Build a wheel from a copy of the source and install it in a fresh venv under ``tmp``;
    returns (source copy, venv, its python). Installed before the current environment becomes
    visible to the fresh one: pip then never sees the current environment's taskneuron_utils."""
    src = _copy_source(tmp / "src")
    venv = tmp / "venv"
    python = _fresh_venv(venv)
    _run(_pip("wheel", "--no-deps", "-w", str(tmp / "dist"), str(src)), timeout=600)
    (wheel,) = (tmp / "dist").glob("taskneuron_utils-*.whl")
    _run(_pip("--python", str(python), "install", "--no-deps", str(wheel)), timeout=600)
    _see_current_dependencies(python)
    return src, venv, python


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory) -> tuple[Path, Path, Path]:
    _pip_can_target_a_venv()
    return _install_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wheel", "editable"])
def test_installed_package_loads_the_shipped_suite(mode, tmp_path, request):
    _pip_can_target_a_venv()
    if mode == "wheel":
        src, venv, python = request.getfixturevalue("wheel_install")
    else:
        src = _copy_source(tmp_path / "src")
        venv = tmp_path / "venv"
        python = _fresh_venv(venv)
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
    course = Path(found["course_dir"]).resolve()
    shipped = sorted(p.name for p in (src / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert found["course"] == shipped + ["timings.json", "glossary.md"], found
    if mode == "wheel":
        assert package.is_relative_to(venv.resolve()), found  # the wheel, not this checkout
        assert data_dir == package / "_data", found
        assert course == package / "_notebooks", found
        # Every module made it into the wheel (pyproject.toml lists the subpackages by hand).
        modules = {p.relative_to(src).as_posix() for p in (src / "taskneuron_utils").rglob("*.py")}
        installed = {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py")}
        assert modules <= installed, f"not in the wheel: {sorted(modules - installed)}"
    else:
        assert package == (src / "taskneuron_utils").resolve(), found
        assert data_dir == (src / "data").resolve(), found
        assert course == (src / "notebooks").resolve(), found
    assert not package.is_relative_to(ROOT), found
    assert found["n_tasks"] == N_TASKS and found["n_train"] > 0, found


@pytest.mark.slow
def test_the_course_copied_from_the_wheel_runs(wheel_install, tmp_path):
    """``taskneurons notebooks DIR`` from the installed wheel copies the course into a folder
    outside the repository, says how to open it, and notebook 00 executes there on a kernel of
    the fresh environment, with the wheel's package (the notebook: about 90 s on 2 quiet
    cores)."""
    src, venv, python = wheel_install
    command = python.parent / ("taskneurons.exe" if os.name == "nt" else "taskneurons")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run([str(command), "notebooks", "course"], cwd=elsewhere, env=_clean_env())
    course = elsewhere / "course"
    shipped = sorted(p.name for p in (src / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in course.glob("*.ipynb")) == shipped
    for name in shipped:
        assert (course / name).read_bytes() == (src / "notebooks" / name).read_bytes()
    assert "jupyter lab course" in done.stdout, done.stdout

    # A kernel of the fresh environment, whatever kernels the machine has installed.
    spec = venv / "share" / "jupyter" / "kernels" / "taskneurons-wheel"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    notebook = course / shipped[0]
    assert notebook.name.startswith("00_")
    done = _run(
        [str(python), "-I", "-c", EXECUTE, str(notebook), "taskneurons-wheel"],
        cwd=elsewhere,
        env=_clean_env(),
        timeout=2400,  # about 90 s on 2 quiet cores; far more on cores shared with other jobs
    )
    used = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(used["python"]).parent == python.parent, used
    assert Path(used["package"]).resolve().is_relative_to(venv.resolve()), used
