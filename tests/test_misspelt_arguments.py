"""No silently ignored argument: every public entry point refuses a misspelt keyword with an
error that names it, before any expensive work.

The entry points are found with ``inspect``: every callable of ``tn.__all__``, ``ex.__all__``
and the layers' ``__all__`` (plots, pages, memory, neurons, hooks, scoring, training, tasks),
every public method of their classes, and the harness model. One that takes no ``**kwargs``
is called with nothing but the misspelt keyword: Python refuses an unexpected keyword before it
binds the other arguments or runs a line, so this costs nothing and needs no arguments. One
that takes ``**kwargs`` passes them somewhere, and has a recipe below that calls it with real
(tiny) arguments plus the misspelt keyword; a new public function with ``**kwargs`` and no
recipe fails ``test_every_entry_point_is_walked``.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from pathlib import Path

import pandas as pd
import pytest

import taskneuron_utils as tn
from taskneuron_utils import experiments as ex

HUB_FIXTURES = Path(__file__).parent / "fixtures" / "hub"
TYPO = "bacth_size"

NAMESPACES = {
    "tn": tn,
    "ex": ex,
    **{
        f"tn.{layer}": getattr(tn, layer)
        for layer in (
            "plots",
            "pages",
            "memory",
            "neurons",
            "hooks",
            "scoring",
            "training",
            "tasks",
        )
    },
}


def skip_reason(obj) -> str | None:
    """Why a public callable is not walked (None: it is). The one kind skipped: the error
    classes (``tn.errors``, re-exported by some layers), which take a free message."""
    if inspect.isclass(obj) and (
        issubclass(obj, BaseException) or obj.__module__ == tn.errors.__name__
    ):
        return "an exception class: takes a message"
    return None


def _methods(cls):
    """{name: callable as reached from the class} of its public methods defined in the
    package (inherited ones included: ``ConfigMixin.replace`` is every config's)."""
    found = {}
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, attr)
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(func) and func.__module__.startswith("taskneuron_utils"):
            found[attr] = getattr(cls, attr)
    return found


def entry_points() -> dict[str, object]:
    """{qualified name: callable}: every public callable and public method, each object once
    (under the first name that reaches it)."""
    found, seen = {}, set()
    for prefix, module in NAMESPACES.items():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj) or skip_reason(obj):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            found[f"{prefix}.{name}"] = obj
            if inspect.isclass(obj):
                for attr, method in _methods(obj).items():
                    found[f"{prefix}.{name}.{attr}"] = method
    try:
        from taskneuron_utils.interop.harness import TaskNeuronsLM
    except ImportError:  # the lm-eval extra is not installed
        pass
    else:
        found["interop.harness.TaskNeuronsLM"] = TaskNeuronsLM
    return found


def takes_kwargs(obj) -> bool:
    """Whether ``obj`` (a function, method or class) takes ``**kwargs``: then only a recipe can
    tell what it does with an unknown one."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return True  # no signature to read: needs a recipe
    return any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


# --- recipes: the entry points with **kwargs, called with real arguments + the typo -----------


@pytest.fixture
def world(tiny_llama, default_tok, toy_task, tmp_path):
    """What the recipes call with: a tiny model, its tokenizer, a split, a relevance and a set."""
    split = toy_task.train[:2]
    relevance = tn.attribute(tiny_llama, default_tok, split, progress=False)
    return {
        "model": tiny_llama,
        "tok": default_tok,
        "task": toy_task,
        "split": split,
        "relevance": relevance,
        "neurons": relevance.top_k(0.1),
        "tmp": tmp_path,
    }


def _correlation_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "overlap": [0.1, 0.2, 0.3, 0.4],
            "task_overlap": [0.2, 0.1, 0.4, 0.3],
            "gain": [0.0, 0.1, 0.3, 0.2],
            "domain": "out",
            "condition": ["task", "random", "task", "random"],
            "layer": 0,
            "similarity_weights": [0.5, 0.6, 0.7, 0.9],
        }
    )


def _config_instance(cls):
    """A config of ``cls`` to call ``replace`` on."""
    if cls is ex.Profile:
        return ex.PROFILES["quick"]
    return cls()


RECIPES = {
    "tn.load_tasks": lambda w, key: tn.load_tasks(["addition"], **{key: 1}),
    "tn.load_hub_task": lambda w, key: tn.load_hub_task(
        "sst2", source=HUB_FIXTURES / "sst2", **{key: 1}
    ),
    "tn.Task.from_jsonl": lambda w, key: tn.Task.from_jsonl(w["tmp"] / "t.jsonl", **{key: 1}),
    "tn.Task.from_csv": lambda w, key: tn.Task.from_csv(w["tmp"] / "t.csv", **{key: 1}),
    "tn.attribute": lambda w, key: tn.attribute(
        w["model"], w["tok"], w["split"], progress=False, **{key: 1}
    ),
    "tn.Relevance.push_to_hub": lambda w, key: w["relevance"].push_to_hub("me/x", **{key: 1}),
    "tn.Relevance.from_hub": lambda w, key: tn.Relevance.from_hub("me/x", **{key: 1}),
    "tn.NeuronSet.push_to_hub": lambda w, key: w["neurons"].push_to_hub("me/x", **{key: 1}),
    "tn.NeuronSet.from_hub": lambda w, key: tn.NeuronSet.from_hub("me/x", **{key: 1}),
    "tn.select": lambda w, key: tn.select({"swap": w["relevance"]}, **{key: 1}),
    "tn.finetune": lambda w, key: tn.finetune(w["model"], w["tok"], w["split"], **{key: 1}),
    "tn.top_examples": lambda w, key: tn.top_examples(
        w["model"], w["tok"], ["a b"], [("layers.0.mlp.act", 0)], **{key: 1}
    ),
    "tn.neuron_stats": lambda w, key: tn.neuron_stats(
        w["model"], w["tok"], ["a b"], [("layers.0.mlp.act", 0)], **{key: 1}
    ),
    "ex.correlations": lambda w, key: ex.correlations(_correlation_frame(), **{key: 1}),
    "ex.sweep_correlations": lambda w, key: ex.sweep_correlations(_correlation_frame(), **{key: 1}),
    "ex.layer_correlations": lambda w, key: ex.layer_correlations(_correlation_frame(), **{key: 1}),
    "ex.Profile.load_tasks": lambda w, key: ex.PROFILES["quick"].load_tasks(
        ["addition"], **{key: 1}
    ),
    "ex.CLMethod.evaluate": lambda w, key: ex.CLMethod(ex.PROFILES["quick"].continual).evaluate(
        w["model"], w["tok"], w["split"], **{key: 1}
    ),
    "tn.memory.estimate_table": lambda w, key: tn.memory.estimate_table(["llama-2-7b"], **{key: 1}),
    # ``**where``: columns of the frame to select rows by; an unknown one is named.
    **{
        f"ex.{name}": lambda w, key, name=name: getattr(ex, name)(
            pd.DataFrame({"method": ["ncft"]}), **{key: 1}
        )
        for name in (
            "table1_verdict",
            "specificity_verdict",
            "table2_verdict",
            "generalization_verdict",
            "continual_verdict",
        )
        if hasattr(ex, name)
    },
    "interop.harness.TaskNeuronsLM": lambda w, key: _harness()(
        model=w["model"], tokenizer=w["tok"], **{key: "ns.safetensors"}
    ),
}

# A realistic misspelling where one reads better than TYPO (the issue's ``neuron=``).
TYPOS = {"interop.harness.TaskNeuronsLM": "neuron", "tn.load_hub_task": "split_size"}


def _harness():
    from taskneuron_utils.interop.harness import TaskNeuronsLM

    return TaskNeuronsLM


def recipe_for(name: str, obj):
    """The recipe of ``name``; a dataclass's ``replace`` has one for all of them."""
    if name in RECIPES:
        return RECIPES[name]
    owner, _, attr = name.rpartition(".")
    cls = entry_points().get(owner)
    if attr == "replace" and inspect.isclass(cls) and dataclasses.is_dataclass(cls):
        return lambda w, key: _config_instance(cls).replace(**{key: 1})
    return None


# --- the tests ------------------------------------------------------------------------------------


def test_every_entry_point_is_walked():
    """Each public callable either takes no ``**kwargs`` (Python refuses the typo) or has a
    recipe; a recipe for a name that is gone is stale."""
    points = entry_points()
    assert len(points) > 150, len(points)
    uncovered = [
        name for name, obj in points.items() if takes_kwargs(obj) and not recipe_for(name, obj)
    ]
    assert not uncovered, (
        f"public entry points with **kwargs and no recipe in {__name__}.RECIPES: {uncovered}"
    )
    stale = sorted(set(RECIPES) - set(points))
    assert not stale, f"recipes for names that are not public entry points: {stale}"


def test_entry_points_without_kwargs_refuse_a_misspelt_keyword():
    """Called with nothing but ``bacth_size=1``: a TypeError naming it, from every one (no
    argument is bound and no line runs before Python refuses it)."""
    walked, silent = 0, []
    for name, obj in entry_points().items():
        if takes_kwargs(obj):
            continue
        walked += 1
        try:
            obj(**{TYPO: 1})
        except TypeError as err:
            if TYPO not in str(err):
                silent.append(f"{name}: {err}")
        else:
            silent.append(f"{name}: accepted it")
    assert walked > 120, walked
    assert not silent, silent


def test_entry_points_with_kwargs_refuse_a_misspelt_keyword(world):
    """The ``**kwargs`` ones, with real arguments: an error (TypeError / ValueError) naming the
    misspelt key, in well under a second each (before the work)."""
    failures = []
    walked = 0
    for name, obj in entry_points().items():
        if not takes_kwargs(obj):
            continue
        recipe = recipe_for(name, obj)
        if recipe is None:
            continue  # test_every_entry_point_is_walked names it
        key = TYPOS.get(name, TYPO)
        walked += 1
        start = time.perf_counter()
        try:
            recipe(world, key)
        except (TypeError, ValueError) as err:
            message = str(err)
            if key not in message:
                failures.append(f"{name}: the error does not name {key!r}: {message}")
            elif "\n" in message.strip():
                failures.append(f"{name}: not one line: {message!r}")
        except Exception as err:  # noqa: BLE001  (any other error is reported as such)
            failures.append(f"{name}: {type(err).__name__}: {err}")
        else:
            failures.append(f"{name}: {key!r} was accepted")
        elapsed = time.perf_counter() - start
        if elapsed > 5:
            failures.append(f"{name}: {elapsed:.1f} s before refusing {key!r}")
    assert walked >= 20, walked
    assert not failures, "\n".join(failures)


def test_the_refusals_name_the_nearest_valid_name(world, tmp_path):
    """Where the package words the error itself, it names the nearest valid name too."""
    cases = [
        (lambda: ex.PROFILES["quick"].detection.replace(n_atribution=8), "'n_attribution'"),
        (lambda: tn.TrainConfig().replace(lrr=1e-3), "'lr'"),
        (lambda: tn.load_tasks(["addition"], data_dri="x"), "'data_dir'"),
        (lambda: tn.load_hub_task("sst2", source=HUB_FIXTURES / "sst2", revison="x"), "'revision'"),
        (lambda: tn.Task.from_jsonl(tmp_path / "t.jsonl", splts=(1, 0, 0)), "'splits'"),
        (
            lambda: tn.top_examples(world["model"], world["tok"], ["a"], [], max_lenght=8),
            "'max_length'",
        ),
        (
            lambda: _harness()(model=world["model"], tokenizer=world["tok"], neuron="x"),
            "'neurons'",
        ),
    ]
    for call, nearest in cases:
        with pytest.raises(TypeError, match=f"did you mean {nearest}"):
            call()
