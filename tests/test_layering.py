"""The package's layers: plot functions draw the frames experiments return, so ``plots`` never
imports ``experiments`` (at any level, lazily included); that edge made the import cycles
``experiments.detection -> plots -> experiments``."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "taskneuron_utils"


def imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Absolute names of the modules ``source`` (a module of ``package``) imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            found.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_plots_never_import_experiments():
    offenders = {}
    for path in (PACKAGE / "plots").glob("*.py"):
        imports = imported_modules(path.read_text(), ("taskneuron_utils", "plots"))
        offenders[path.name] = sorted(
            m for m in imports if m.startswith("taskneuron_utils.experiments")
        )
    assert not {name: mods for name, mods in offenders.items() if mods}


def test_the_check_sees_a_lazy_relative_import():
    source = "def plot():\n    from ..experiments.intervals import table1_intervals\n"
    assert imported_modules(source, ("taskneuron_utils", "plots")) == {
        "taskneuron_utils.experiments.intervals"
    }
