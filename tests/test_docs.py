"""The documentation tells the truth about the API: every public name of ``tn`` and ``ex`` is on
an API reference page (docs/api/, rendered by mkdocstrings), as the very object it names, and
the public functions say what they take and return. ``mkdocs build --strict`` (CI) checks that
those pages render and that every link resolves; tests/test_browser.py opens one in Chromium."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import warnings
from pathlib import Path

import pytest

import taskneuron_utils as tn
from taskneuron_utils import experiments as ex

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))

# Public functions whose signatures may still lack an annotation (a parameter or the return).
# Empty since every public function was annotated; keep it that way.
NOT_YET_ANNOTATED: set[str] = set()


def _resolve(path: str):
    """The object an identifier names, as griffe (mkdocstrings) reads it: a submodule wins over
    a package attribute of the same name (``experiments.deactivation`` is the module)."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        parent, _, name = path.rpartition(".")
        return getattr(_resolve(parent), name)


def _documented() -> dict[str, object]:
    found = {}
    for page in API_PAGES:
        for path in re.findall(r"^::: (\S+)$", page.read_text(), re.M):
            found[path] = _resolve(path)
    return found


def _public() -> dict[str, object]:
    names = {f"tn.{n}": getattr(tn, n) for n in tn.__all__}
    names.update({f"ex.{n}": getattr(ex, n) for n in ex.__all__})
    return names


def test_all_lists_every_public_name():
    imported = {n for n, v in vars(tn).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert imported <= set(tn.__all__), f"not in tn.__all__: {sorted(imported - set(tn.__all__))}"
    for module in (tn, ex):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{module.__name__}.__all__ names what it lacks: {missing}"


def test_every_public_name_is_on_an_api_page():
    documented = _documented()
    objects = list(documented.values())
    missing = [
        name for name, obj in _public().items() if not any(obj is other for other in objects)
    ]
    assert not missing, (
        f"not on any docs/api/*.md page (add a '::: taskneuron_utils...' line): {missing}"
    )


def test_api_pages_name_no_deprecated_alias():
    """A page names each object at its home (``tn.core.site_map``), never through a name that
    left ``tn`` and only resolves with a DeprecationWarning (mkdocstrings could not find it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _documented()
    moved = [str(w.message) for w in caught if "moved to tn" in str(w.message)]
    assert not moved, f"docs/api/*.md names deprecated aliases: {moved}"


def test_every_layer_is_on_an_api_page():
    """Every layer (a folder of the package, and errors.py / cli.py) has its own
    ``::: taskneuron_utils.<layer>`` line: its docstring says what lives there."""
    package = ROOT / "taskneuron_utils"
    layers = {p.parent.name for p in package.glob("*/__init__.py")} | {"errors", "cli"}
    documented = set(_documented())
    missing = sorted(f"taskneuron_utils.{name}" for name in layers)
    missing = [path for path in missing if path not in documented]
    assert not missing, f"layers without a '::: ...' line on a docs/api/*.md page: {missing}"


def _unannotated(fn) -> list[str]:
    sig = inspect.signature(inspect.unwrap(fn))
    missing = [
        p
        for p, v in sig.parameters.items()
        if v.annotation is inspect.Parameter.empty and p not in ("self", "cls")
    ]
    return missing + (["return"] if sig.return_annotation is inspect.Signature.empty else [])


def test_public_functions_are_annotated():
    functions = {n: o for n, o in _public().items() if inspect.isfunction(o)}
    lacking = {n: _unannotated(f) for n, f in functions.items() if _unannotated(f)}
    new = {n: v for n, v in lacking.items() if n not in NOT_YET_ANNOTATED}
    assert not new, f"public functions without annotations: {new}"
    done = sorted(NOT_YET_ANNOTATED - set(lacking))
    assert not done, f"annotated now: remove {done} from NOT_YET_ANNOTATED"


def test_site_hook_keeps_repository_links_and_fails_missing_ones():
    pytest.importorskip("mkdocs")
    hooks = _load(ROOT / "docs" / "hooks.py")
    page = (
        "See [the figure](../benchmarks/results/replication/finetune_nll.png), "
        "[scale](scale.md) and [gone](../benchmarks/no_such_file.png)."
    )
    out = hooks._rewrite(page, "experiments", "docs/experiments")
    # ../benchmarks from docs/experiments/ is docs/benchmarks: missing, left for --strict to flag
    assert "](../benchmarks/results/replication/finetune_nll.png)" in out
    out = hooks._rewrite(page, "", "docs")
    assert "](benchmarks/results/replication/finetune_nll.png)" in out  # added to the site
    assert "](scale.md)" in out
    assert "](../benchmarks/no_such_file.png)" in out  # unchanged: the build warns, strict fails
    readme = hooks._readme_section("Notebooks")
    assert "00_tour.ipynb" in readme and "## " not in readme
    with pytest.raises(ValueError, match="no section '## Nope'"):
        hooks._readme_section("Nope")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("docs_hooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
