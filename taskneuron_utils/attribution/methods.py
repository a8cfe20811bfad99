"""The attribution methods of ``tn.attribute``: one object each, over one small interface.

Every method yields, per example and unit ``j``, a signed number ``r_j`` in nats, read as the
loss change when the unit is moved from its real activation ``a`` to a baseline ``a'``
(``a' = 0`` unless ``baseline=`` says otherwise), or a plain statistic; ``Relevance`` keeps the
sums of ``|r_j|`` and ``r_j``. ``L`` is the example's mean answer-token NLL; sums over ``t``
run over token positions (padding contributes nothing).

- ``GradXAct`` (``"grad_x_act"``, the paper's): ``r_j = -sum_t dL/da[t,j] * a[t,j]``. One
  forward and one backward per batch, gradients w.r.t. the site outputs only.
- ``AttributionPatching`` (``"attribution_patching"``): ``r_j = -sum_t dL/da[t,j] * (a[t,j] -
  a'[t,j])``, grad x act's step with a baseline (a paired baseline adds one forward pass).
- ``IntegratedGradients`` and ``ExactAblation``: in ``paths`` (they re-run the model per site
  or per unit).
- ``Activation`` (``"activation"``): no gradient; the mean over positions of ``|a[t,j]|``
  (``statistic="mean_abs"``) or the share of positions with ``a[t,j] > 0`` (``"firing_rate"``,
  LAPE's). One forward pass per batch.

Metrics (``metric=``, ``attribution.metrics``): ``L`` is the answer NLL (``"nll"``, the
default) or minus the logit difference of minimal pairs (``"logit_diff"``), for every gradient
method and exact ablation; under ``"logit_diff"`` the sums over ``t`` run over prompt positions.

Baselines (``baseline=``): ``"zero"``; ``"mean"``, the per-unit mean over the real positions of
the attributed data itself; a ``tn.hooks.ActivationStats`` (its ``mean``, from a reference
set); or for attribution patching and integrated gradients a split of corrupted prompts paired
one to one with ``data`` (same number of examples, each with the same token length; under
``metric="logit_diff"`` the minimal-pair alternatives, equal in prompt token length only).

A method is built with its own settings (``IntegratedGradients(steps=8)``), checked at once;
``bind`` checks it against the data and the sites (no forward pass) and works out what the run
will cost (``attribution.budget``: a run far beyond grad x act's work, or one whose pass needs
more than the free memory, is refused there unless the method has ``force=True``), and
``attribute`` then calls ``prepare`` once, ``step`` once per batch and ``finish`` once.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType
from typing import ClassVar

import torch

from ..core.placement import input_device
from ..hooks.baselines import ActivationStats, stats_of_encoded
from ..hooks.tracing import trace
from ..neurons.neuron_set import NeuronSet
from ..tasks import collate, encode, to_device
from . import budget
from .budget import FORWARD_SHARE, describe_bytes
from .cost import grad_pass, grad_x_act_flops, shapes_of, statistic_pass
from .metrics import Metric
from .state import RunningSums, hash_encoded


class Method:
    """One attribution method. Subclasses set ``name`` and ``description`` and implement
    ``step``; a method with options takes them in ``__init__`` and checks them there."""

    name: ClassVar[str]
    description: str = ""  # what r_j is, in words (provenance["relevance"])
    traced: ClassVar[bool] = False  # attribute keeps every site's output and gradient open
    takes_baseline: ClassVar[bool] = False

    def __init__(
        self, baseline="zero", neurons=None, force: bool = False, metric="nll", pairs=None
    ):
        if not isinstance(force, bool):
            raise ValueError(f"force must be True or False, got {force!r}")
        self.baseline, self.neurons, self.force = baseline, neurons, force
        self.metric = Metric(metric, pairs)  # the loss L (attribution.metrics)
        self.mean: dict | None = None  # {site name: (n,)} mean baseline, once known
        self.paired: list | None = None  # encoded corrupted prompts
        self.subset: dict = {}  # {site name: long indices} of ``neurons``
        self.measured: dict | None = None  # {site name: bool (n,)}; None: every unit
        self.extra: dict = {}  # {name: shape} of extra float64 sums
        self.settings: dict = {}

    def bind(self, model, tok, data, encoded, sites, max_length: int, batch_size: int = 8) -> None:
        """Check the method against the data and sites (ValueError naming what is wrong), keep
        what its steps need, and check what the run will cost against the budgets; no forward
        pass."""
        self.sites, self.pad_id = sites, tok.pad_token_id
        # The pairs first (their errors name the example); under NLL nothing, no settings.
        spliced, metric_settings = self.metric.bind(self, tok, data, encoded, max_length)
        baseline = self._bind_baseline(tok, encoded, max_length, spliced)
        self.settings = {"baseline": baseline, **metric_settings}
        if self.neurons is not None:
            self.subset = _subset(self.neurons, sites)
            self.measured = {s.name: torch.zeros(s.n_neurons, dtype=torch.bool) for s in sites}
            for name, idx in self.subset.items():
                self.measured[name][idx if self.name == "ablation" else slice(None)] = True
            self.settings["neurons"] = {name: idx.tolist() for name, idx in self.subset.items()}
        self.shapes = shapes_of(model)
        self.dtype_bytes = next(model.parameters()).element_size()
        self.widths = {s.kind: s.n_neurons for s in sites if s.layer == sites[0].layer}
        self.free = budget.free_memory(input_device(model))
        self.check_cost(
            [
                batch_geometry(encoded[i : i + batch_size])
                for i in range(0, len(encoded), batch_size)
            ]
        )

    def work(self) -> float:
        """The run's work in units of grad x act's on the same data (floating-point
        operations: ``attribution.cost``)."""
        return 1.0

    def pass_bytes(self, rows: int, T: int, N: int, padding: bool) -> float:
        """Memory above the weights of this method's smallest pass over a batch of ``rows``
        examples, ``T`` tokens, ``N`` answer tokens (``attribution.cost``)."""
        return self.grad_x_act_bytes(rows, T, N, padding)

    def grad_x_act_bytes(self, rows: int, T: int, N: int, padding: bool) -> float:
        """Grad x act's pass over the same batch and sites (the default memory budget)."""
        sh, s = self.shapes, self.dtype_bytes
        return grad_pass(sh, s, rows, T, N, padding, self.widths)["peak"]

    def bounds(self) -> str:
        """The options that make this method's work smaller, for a refusal."""
        return "fewer examples"

    def what(self) -> str:
        """What the work is spent on, for a refusal."""
        return "the data"

    def check_cost(self, batches: list[tuple[int, int, int, bool]]) -> None:
        """Refuse (ValueError, one line) or, with ``force``, warn when the work exceeds
        ``WORK_BUDGET`` x grad x act's (and ``FLOP_FLOOR``) or one pass needs more than the
        free memory; ``batches``: (rows, T, N, padding) of each batch."""
        work = self.work()
        flops = work * grad_x_act_flops(self.shapes, sum(rows * T for rows, T, _, _ in batches))
        need = max(self.pass_bytes(*batch) for batch in batches)
        self.cost = {"x_grad_x_act": work, "flops": flops, "pass_bytes": need}
        problems = []
        if work > budget.WORK_BUDGET and flops > budget.FLOP_FLOOR:
            problems.append(
                f"{self.what()} would take ~{work:,.0f}x the time of grad x act on the same "
                f"data (~{flops:.1e} floating-point operations); bound it with {self.bounds()}"
            )
        if self.free is not None and need > self.free:
            rows, T = max((b[0] * b[1], b[:2]) for b in batches)[1]
            problems.append(
                f"one pass over {rows} examples x {T} tokens needs ~{describe_bytes(need)} "
                f"beyond the model but {describe_bytes(self.free)} is free; lower batch_size "
                "or max_length, or attribute fewer sites (kinds=)"
            )
        if not problems:
            return
        message = f"{self.name}: {'; and '.join(problems)}"
        if self.force:
            warnings.warn(message + " (running anyway: force=True)", stacklevel=_user_level())
        else:
            raise ValueError(message + ", or pass force=True to run it anyway")

    def prepare(self, model, tok, encoded, batch_size: int) -> None:
        """Passes needed before the loop: the mean over the data itself, when that is the
        baseline."""
        if isinstance(self.baseline, str) and self.baseline == "mean":
            self.mean = stats_of_encoded(model, tok, encoded, self.sites, batch_size).mean

    def step(self, model, batch, start: int, tr, sums: RunningSums, batch_index: int) -> None:
        """Add one batch (``collate``'s dict, rows ``start ...``) to ``sums``. ``tr``: the open
        trace of every site when ``traced``, else None."""
        raise NotImplementedError

    def finish(self, sums: RunningSums, provenance: dict) -> None:
        """Write what the extra sums say into ``provenance``."""

    def _bind_baseline(self, tok, encoded, max_length, spliced=None) -> str:
        """Validate ``baseline``, keep what it needs; return its description. ``spliced``: the
        paired prompts ``logit_diff``'s pairs already checked (``Metric.bind``)."""
        baseline = self.baseline
        if isinstance(baseline, str):
            if baseline in ("zero", "mean"):
                return "zero" if baseline == "zero" else "mean over the data's positions"
            raise ValueError(
                f"baseline must be 'zero', 'mean', tn.activation_stats(...) or a "
                f"split of paired corrupted prompts, got {baseline!r}"
            )
        if isinstance(baseline, ActivationStats):
            baseline.check(self.sites)
            self.mean = {site.name: baseline.mean[site.name] for site in self.sites}
            return f"mean of a reference set ({baseline.n_positions} positions, {baseline.fingerprint})"
        if self.name == "ablation":
            raise ValueError(
                "ablation takes baseline 'zero', 'mean' or tn.activation_stats(...); "
                "paired corrupted prompts are for attribution_patching and "
                "integrated_gradients"
            )
        if spliced is not None:
            self.paired = spliced
            return f"minimal-pair alternatives {hash_encoded(spliced)}"
        paired = encode(tok, baseline, max_length=max_length)
        if len(paired) != len(encoded):
            raise ValueError(
                f"the paired baseline has {len(paired)} examples but the data has "
                f"{len(encoded)}; corrupted prompts pair one to one with the examples"
            )
        for i, (corrupt, real) in enumerate(zip(paired, encoded)):
            if len(corrupt.input_ids) != len(real.input_ids):
                raise ValueError(
                    f"paired baseline example {i} has {len(corrupt.input_ids)} tokens "
                    f"but data example {i} has {len(real.input_ids)}; a corrupted "
                    "prompt must have its example's token length"
                )
        self.paired = paired
        return f"paired corrupted prompts {hash_encoded(paired)}"

    def paired_activations(self, model, batch, start, device, sites) -> dict | None:
        """{site name: (B, T, n)} activations of the corrupted prompts paired with this batch,
        or None without a paired baseline."""
        if not self.paired:
            return None
        other = to_device(
            collate(self.paired[start : start + len(batch["input_ids"])], self.pad_id), device
        )
        with torch.no_grad(), trace(model, sites) as tr:
            model.base_model(
                input_ids=other["input_ids"],
                attention_mask=other["attention_mask"],
                use_cache=False,
            )
            return {name: record.output.detach() for name, record in tr.items()}

    def baseline_at(self, name: str, paired: dict | None):
        """a' at one site: None (zero), (n,) or (B, T, n)."""
        if paired is not None:
            return paired[name]
        return None if self.mean is None else self.mean[name]


class GradXAct(Method):
    """The paper's score: ``|sum_t dL/da * a|`` per example (a zero baseline)."""

    name = "grad_x_act"
    description = "|sum_t dL/da * a| per example"
    traced = True

    def __init__(self, force: bool = False, metric: str = "nll", pairs=None):
        super().__init__(force=force, metric=metric, pairs=pairs)

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        """One forward and one backward; adds this batch's per-example |r| and r to the sums."""
        paired = self.paired_activations(model, batch, start, batch["input_ids"].device, self.sites)
        size, length = batch["input_ids"].shape
        losses, n_tokens = self.metric.losses(model, batch, start, size)
        tr.backward(losses.sum())  # gradients of the site outputs only, no parameter gradients
        prompt = self.metric.prompt_mask(batch)  # (B, T, 1) under logit_diff, else None
        for name, record in tr.items():
            activation = record.output.detach().reshape(size, length, -1)
            base = self.baseline_at(name, paired)
            if base is not None:
                activation = activation.float() - base.to(activation.device, torch.float32)
            if prompt is not None:  # logit_diff sums over prompt positions only
                activation = activation * prompt.to(activation)
            grad = record.grad.reshape(size, length, -1)
            # r = -(dL/da . (a - a')): the first-order change of the loss when a moves to a'.
            sums.add(name, -_product(grad, activation).sum(dim=1), batch_index)  # (B, n)
        sums.count(size, n_tokens)
        tr.clear()


class AttributionPatching(GradXAct):
    """Grad x act's step with a baseline: ``|sum_t dL/da * (a - a')|`` per example, the
    gradient taken at the real activation."""

    name = "attribution_patching"
    description = "|sum_t dL/da * (a - a')| per example at the real activation"
    takes_baseline = True

    def __init__(self, baseline="zero", force: bool = False, metric: str = "nll", pairs=None):
        Method.__init__(self, baseline, force=force, metric=metric, pairs=pairs)

    def work(self) -> float:
        return 1.0 + (FORWARD_SHARE if self.paired else 0.0)  # + the corrupted prompts' forward

    def pass_bytes(self, rows, T, N, padding) -> float:
        kept = self.shapes.layers * sum(self.widths.values()) * rows * T * self.dtype_bytes
        return self.grad_x_act_bytes(rows, T, N, padding) + (kept if self.paired else 0)


class Activation(Method):
    """A plain statistic of the activations, no gradient."""

    name = "activation"
    STATISTICS = ("mean_abs", "firing_rate")

    def __init__(self, statistic: str = "mean_abs", force: bool = False):
        super().__init__(force=force)
        if statistic not in self.STATISTICS:
            raise ValueError(f"statistic must be one of {self.STATISTICS}, got {statistic!r}")
        self.statistic = statistic
        self.description = (
            "mean over positions of |a| per example"
            if statistic == "mean_abs"
            else "share of positions with a > 0 per example (LAPE firing rate)"
        )

    def bind(self, model, tok, data, encoded, sites, max_length, batch_size=8) -> None:
        super().bind(model, tok, data, encoded, sites, max_length, batch_size)
        self.settings["statistic"] = self.statistic

    def work(self) -> float:
        return FORWARD_SHARE

    def pass_bytes(self, rows, T, N, padding) -> float:
        return statistic_pass(self.shapes, self.dtype_bytes, rows, T, padding, self.widths)["peak"]

    def step(self, model, batch, start, tr, sums, batch_index) -> None:
        size, length = batch["input_ids"].shape
        real = batch["attention_mask"].reshape(size, length, 1).float()
        with torch.no_grad(), trace(model, self.sites) as kept:
            model.base_model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                use_cache=False,
            )
            for name, record in kept.items():
                a = record.output.reshape(size, length, -1).float()
                value = a.abs() if self.statistic == "mean_abs" else (a > 0).float()
                sums.add(name, (value * real).sum(1) / real.sum(1), batch_index)
        sums.count(size, answer_token_count(batch))


def _product(grad: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """``grad * activation`` in float32, (B, T, n). Float32 and contiguous (the usual case):
    written into ``grad``, which nothing reads after this (each site's gradient is its own
    tensor), so no (B, T, n) tensor is allocated per site; the values are the same bits."""
    if (
        grad.dtype == activation.dtype == torch.float32
        and grad.is_contiguous()
        and activation.is_contiguous()
    ):
        return grad.mul_(activation)
    return grad.float() * activation.float()


def _user_level() -> int:
    """The ``stacklevel`` of ``warnings.warn`` (called right here) that names the first
    caller outside the package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def batch_geometry(encoded) -> tuple[int, int, int, bool]:
    """(rows, tokens a row, answer tokens, padded) of the batch ``collate`` makes of
    ``encoded``, without making it."""
    lengths = [len(e.input_ids) for e in encoded]
    answers = sum(min(e.n_answer, len(e.input_ids) - 1) for e in encoded)
    return len(encoded), max(lengths), answers, len(set(lengths)) > 1


def answer_token_count(batch: dict) -> int:
    """The answer tokens of a collated batch (the labels that are not -100, shifted)."""
    return int((batch["labels"][:, 1:] != -100).sum())


def _subset(neurons, sites) -> dict:
    """{site name: sorted unique long indices} from a NeuronSet or a dict, checked."""
    indices = neurons.indices if isinstance(neurons, NeuronSet) else dict(neurons)
    by_name = {site.name: site for site in sites}
    subset = {}
    for name, idx in indices.items():
        idx = torch.unique(torch.as_tensor(idx, dtype=torch.long).reshape(-1))
        if name not in by_name:
            raise ValueError(
                f"neurons names site {name!r}, which is not among the attributed "
                f"sites (first: {sites[0].name}); pass kinds= to match"
            )
        if len(idx) and (idx.min() < 0 or idx.max() >= by_name[name].n_neurons):
            raise ValueError(
                f"neurons names unit {int(idx.max())} of {name}, which has "
                f"{by_name[name].n_neurons} units"
            )
        if len(idx):
            subset[name] = idx
    if not subset:
        raise ValueError("neurons selects no unit; pass at least one")
    return subset
