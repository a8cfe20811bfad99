"""The package's layers, one way: the table below is the architecture, and this test holds it.

A module may import (at module level or inside a function, it makes no difference here) the
modules of its own folder and of every folder in a lower row; never a folder in its own row or
above, and never another module's private (``_``-prefixed) name. Inside the package there is no
import cycle at all, function-level imports included, so no function-level import is needed
except for optional dependencies (nnsight, transformer-lens, lm-eval, huggingface_hub, ...).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "taskneuron_utils"
ROOT = "taskneuron_utils"

# Lowest first. A folder (or a top-level module: errors, cli) sits in one row.
LAYERS = [
    ("errors",),  # the public error classes; imports nothing of ours
    ("core",),  # families, sites, layout, wrappers, placement, parallel, identity, models
    ("tasks",),  # data, encoding, hub loaders, the shipped suite
    ("io",),  # file formats: artefacts, LAPE, Hub folders (never the classes they store)
    ("neurons",),  # NeuronSet, Relevance, selections, analysis
    ("hooks",),  # trace / Edit, deactivate / scale, ablation statistics
    ("scoring",),  # answer loss, option scoring, generation, evaluate
    ("attribution",),  # attribute() and its method objects
    ("training",),  # TrainConfig, finetune, the loop
    ("plots",),  # figures of frames (and the statistics helpers of neurons.analysis)
    ("memory", "pages", "interop"),  # estimates; what a neuron does; lm-eval
    ("experiments",),  # one module per section of the paper
    ("ui", "course"),  # playground and widgets; the course's exercise checks and solutions
    ("cli", "__init__"),  # the command line and the flat ``tn`` facade
]
RANK = {name: row for row, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def folder_of(module: str) -> str:
    """The table's name for ``module``: its first component below the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(module: str, source: str | None = None) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of ours in ``module``,
    anywhere in the file; ``from .x import y`` where ``x.y`` is a module counts as ``x.y``."""
    path = MODULES.get(module)
    is_package = path is not None and path.name == "__init__.py"
    source = path.read_text() if source is None else source
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == ROOT or target.startswith(ROOT + ".")):
                continue
            names = []
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    found.append((f"{target}.{alias.name}", [], node.lineno))
                else:
                    names.append(alias.name)
            if names:
                found.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith(ROOT)]
    return found


def violations(module: str, source: str | None = None) -> list[str]:
    """The import rules ``module`` breaks, one line each."""
    mine = folder_of(module)
    found = []
    for target, names, line in imports_of(module, source):
        theirs = folder_of(target)
        if theirs != mine and RANK[theirs] >= RANK[mine] and module != ROOT:
            found.append(f"{module}:{line} imports {target} ({theirs} is not below {mine})")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and target != module:
            found.append(f"{module}:{line} imports private {private} from {target}")
    return found


def test_every_folder_and_top_level_module_has_a_row():
    assert {folder_of(m) for m in MODULES} - set(RANK) == set()


def test_no_upward_import_and_no_private_import():
    assert [v for m in sorted(MODULES) for v in violations(m)] == []


def test_no_import_cycle_inside_the_package():
    graph = {m: {t for t, _, _ in imports_of(m) if t in MODULES} for m in MODULES}
    # A package imports its __init__'s submodules; a submodule's parent package is not an edge.
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_function_level_imports_are_for_optional_dependencies_only():
    lazy = []
    for m, path in MODULES.items():
        for f in ast.walk(ast.parse(path.read_text())):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(f):
                    if isinstance(node, ast.ImportFrom) and (
                        node.level or (node.module or "").startswith(ROOT)
                    ):
                        lazy.append(f"{m}:{node.lineno}")
    assert lazy == []


def test_every_folder_says_what_lives_there():
    for path in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and "import" in doc.lower(), (
            f"{path.parent.name}/__init__.py: say what it may import"
        )


# The checks themselves, shown to fail: each rule on a source written to break it.


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # core is below hooks: a core module importing hooks, lazily, is upward.
        ("taskneuron_utils.core.layout", "def f():\n    from ..hooks import trace\n", "hooks"),
        # same row, another folder: pages may not import memory.
        ("taskneuron_utils.pages.scan", "from ..memory.estimate import x\n", "memory"),
        # a private name of another module, even from below.
        ("taskneuron_utils.training.loop", "from ..attribution.run import _hash\n", "private"),
        # plots never import experiments.
        ("taskneuron_utils.plots.tables", "from ..experiments.intervals import t\n", "plots"),
    ],
)
def test_the_checks_catch_what_they_forbid(module, source, expected):
    found = violations(module, source)
    assert len(found) == 1 and expected in found[0]


def test_the_checks_allow_downward_and_same_folder_imports():
    source = "from ..core.layout import layout_of\nfrom .tracing import trace\n"
    assert violations("taskneuron_utils.hooks.interventions", source) == []


def test_the_readme_layout_names_every_module():
    """README "Layout" is the architecture in words: every module of the package is named there
    (as `name` in its folder's row, or by file name)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("## Layout") :]
    section = section[: section.index("\n## ", 3)] if "\n## " in section[3:] else section
    missing = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
        and f"`{path.stem}`" not in section
        and path.name not in section
    ]
    assert missing == []
