"""Neuron-level continual-learning methods for ``experiments.continual`` (the paper's NCFT and
W-NCFT, and the random-neuron control), on the interface of ``cl_methods.CLMethod``.

    random_neurons  as many random neurons per site as NCFT trains (fraction k of every site),
                    drawn afresh each stage
    ncft            before each task, its top-k neurons detected on the current model
                    (``tn.attribute``); only those are trained (``tn.finetune(neurons=...)``)
    wncft           NCFT training + the paper's App. A.2 inference, without task identity
                    (see ``WNCFT``)
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F

from ...core.placement import input_device
from ...tasks import collate, encode, to_device
from .methods import CLMethod
from ...core.layout import layout_of
from ...hooks.tracing import Edit, trace
from ...attribution.run import attribute
from ...training.finetuning import finetune
from ...neurons.neuron_set import NeuronSet
from ...scoring.loss import BATCH_EXAMPLES


class NCFT(CLMethod):
    """Neuron-level continual fine-tuning: detect the task's neurons on the current model, train
    only those (``tn.finetune(neurons=...)``); inference unchanged."""

    name = "ncft"

    def __init__(self, config):
        super().__init__(config)
        self.sets: list = []  # NeuronSet per stage
        self.neurons = None

    def before_task(self, model, tok, task, stage):
        c = self.config
        data = task.train[: c.n_attribution] if c.n_attribution else task.train
        rel = attribute(
            model, tok, data, batch_size=c.batch_size, max_length=c.max_length, progress=False
        )
        self.neurons = rel.top_k(c.k)

    def train(self, model, tok, task, train, stage):
        history = finetune(model, tok, train, self.train_config(stage), neurons=self.neurons)
        self.trainable_parameters = history.attrs["trainable_parameters"]
        self.optimizer_state_bytes = history.attrs["optimizer_state_bytes"]
        self.sets.append({k: v.clone() for k, v in self.neurons.indices.items()})

    def state_dict(self):
        return {"sets": self.sets}

    def load_state_dict(self, state):
        self.sets = list(state["sets"])


class RandomNeurons(NCFT):
    """As many random neurons per site as NCFT (round(k * n) of every site), drawn each stage."""

    name = "random_neurons"

    def before_task(self, model, tok, task, stage):
        sizes = dict(layout_of(model))
        generator = torch.Generator().manual_seed(self.config.seed + 1000 + stage)
        chosen = {
            s: torch.sort(torch.randperm(n, generator=generator)[: round(self.config.k * n)]).values
            for s, n in sizes.items()
        }
        layout = layout_of(model)
        self.neurons = NeuronSet(chosen, layout, {"model": layout.model, "selection": "random"})


def wncft_weights(query: torch.Tensor, vectors: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax_t(cos(query, v_t) / temperature): (B, d) x (T, d) -> (B, T)."""
    sims = F.cosine_similarity(query.float()[:, None, :], vectors.float()[None, :, :], dim=-1)
    return torch.softmax(sims / temperature, dim=-1)


class WNCFT(NCFT):
    """W-NCFT (paper App. A.2), implemented without task identity at inference.

    Training is NCFT's. After stage t the method stores (a) the rows of task t's neurons as
    trained, (b) the starting rows of every neuron the first time it is trained, (c) task t's
    vector: the mean last-layer hidden state (over prompt tokens, then over up to
    ``wncft_samples`` training examples) of the *starting* model. Since NCFT changes only the
    trained rows, the model after stage s equals the starting model with the rows theta_s[u] of
    the trained neurons U, theta_s[u] = the row stored at the latest stage <= s that trained u
    (else the starting row). Inference for an input x: its vector q (same recipe, on the starting
    model: every row of U reset by a ``tn.trace`` edit), weights w = softmax_s(cos(q, v_s) / T),
    and every unit u of U recomputed from sum_s w_s theta_s[u] (``Edit.replace``). So an
    overlapping neuron (trained at several stages) is combined across those stages' rows with
    the input's weights; one trained only at stage s contributes theta_s from stage s on and its
    earlier value before. Examples are scored in batches: a unit's output is linear in its row,
    so sum_s w_s (x . theta_s[u]) is computed per batch row with that row's example's weights
    (``loss.BATCH_EXAMPLES`` says which example a row holds); equal, up to float rounding, to
    scoring each example alone with its combined rows.
    """

    name = "wncft"

    def __init__(self, config):
        super().__init__(config)
        self.rows: list[dict[str, torch.Tensor]] = []  # stage -> site -> (n_sel, in[+1])
        self.base: dict[str, dict[int, torch.Tensor]] = {}  # site -> {unit: starting row}
        self.vectors: list[torch.Tensor] = []

    def before_task(self, model, tok, task, stage):
        super().before_task(model, tok, task, stage)

        sites = layout_of(model).by_name
        for name, idx in self.neurons.indices.items():
            known = self.base.setdefault(name, {})
            new = [int(i) for i in idx if int(i) not in known]
            if new:
                for i, row in zip(new, sites[name].read(new)):
                    known[i] = row.clone()
        data = task.train[: self.config.wncft_samples]
        self.vectors.append(self.representations(model, tok, data).mean(0))

    def after_task(self, model, tok, task, train, stage):
        sites = layout_of(model).by_name
        self.rows.append(
            {name: sites[name].read(idx) for name, idx in self.sets[-1].items() if len(idx)}
        )

    def _snapshots(self):
        """site -> (units U, tensor (S, |U|, in[+1]) of theta_s[U] per stage s)."""
        out = {}
        for name, base in self.base.items():
            units = sorted(base)
            pos = {u: i for i, u in enumerate(units)}
            current = torch.stack([base[u] for u in units])
            stages = []
            for s, stage_rows in enumerate(self.rows):
                if name in stage_rows:
                    current = current.clone()
                    for j, u in enumerate(self.sets[s][name].tolist()):
                        current[pos[u]] = stage_rows[name][j]
                stages.append(current)
            out[name] = (torch.tensor(units, dtype=torch.long), torch.stack(stages))
        return out

    @contextlib.contextmanager
    def _rows_edit(self, model, combined):
        """Every stored unit recomputed from fixed rows; combined {site: (units, rows)}."""
        with _units_edit(
            model,
            {
                name: (units, functools.partial(_unit_outputs, rows=rows))
                for name, (units, rows) in combined.items()
            },
        ):
            yield

    @torch.no_grad()
    def representations(self, model, tok, data) -> torch.Tensor:
        """(n, d): mean last-layer hidden state over each example's prompt tokens, computed on
        the starting model (every stored neuron reset to its starting row)."""
        encoded = encode(tok, data, max_length=self.config.max_length)
        base = {
            n: (torch.tensor(sorted(b), dtype=torch.long), torch.stack([b[u] for u in sorted(b)]))
            for n, b in self.base.items()
        }
        device = input_device(model)
        out = []
        with self._rows_edit(model, base):
            for start in range(0, len(encoded), self.config.eval_batch_size):
                batch = collate(
                    encoded[start : start + self.config.eval_batch_size], tok.pad_token_id
                )
                batch = to_device(batch, device)
                hidden = model.base_model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    use_cache=False,
                ).last_hidden_state.float()
                prompt = ((batch["labels"] == -100) & (batch["attention_mask"] == 1)).float()
                prompt = prompt.to(hidden.device)  # a device_map may end on another device
                out.append((hidden * prompt[..., None]).sum(1) / prompt.sum(1, keepdim=True))
        return torch.cat(out)

    def weights(self, model, tok, data) -> torch.Tensor:
        """(n, stages) mixture weights of each example of ``data``."""
        return wncft_weights(
            self.representations(model, tok, data),
            torch.stack(self.vectors),
            self.config.wncft_temperature,
        )

    def evaluate(self, model, tok, split):
        if not self.rows:
            return super().evaluate(model, tok, split)
        weights = self.weights(model, tok, split)  # (n, S)
        with self._mixed_edit(model, self._snapshots(), weights):
            # The default path runs the batch's common prefix once for all its examples: their
            # mixtures differ, so each prompt is run on its own ("prompt"), once for its options.
            result = super().evaluate(model, tok, split, share_prefix="prompt")
        return {"score": result["score"], "nll": result["nll"], "n": len(split)}

    @contextlib.contextmanager
    def _mixed_edit(self, model, snaps, weights):
        """Every stored unit recomputed as sum_s weights[e, s] (x . theta_s[u]) for the batch
        rows of example e (``loss.BATCH_EXAMPLES``); snaps: ``_snapshots()``, weights (n, S)."""

        def mixed(x, n_in, stages):
            examples = BATCH_EXAMPLES.get()
            if examples is None or x.shape[0] % len(examples):
                raise RuntimeError(
                    "W-NCFT's mixture is per example: score through "
                    "evaluation.evaluate(share_prefix='prompt' or False)"
                )
            per_row = weights[examples].repeat_interleave(x.shape[0] // len(examples), 0)
            outs = torch.stack([_unit_outputs(x, n_in, rows) for rows in stages])  # (S, R, ..., U)
            return torch.einsum("sr...u,rs->r...u", outs, per_row.to(outs))

        with _units_edit(
            model,
            {
                name: (units, functools.partial(mixed, stages=stages))
                for name, (units, stages) in snaps.items()
            },
        ):
            yield

    def state_dict(self):
        return {
            **super().state_dict(),
            "rows": self.rows,
            "base": self.base,
            "vectors": self.vectors,
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.rows, self.vectors = list(state["rows"]), list(state["vectors"])
        self.base = {n: dict(b) for n, b in state["base"].items()}


def _unit_outputs(x: torch.Tensor, n_in: int, rows: torch.Tensor) -> torch.Tensor:
    """(..., |U|): the units' outputs for input x (..., n_in) from their rows (|U|, n_in[+1]:
    the weights, then the bias when the site has one)."""
    bias = rows[:, n_in] if rows.shape[1] == n_in + 1 else None
    return F.linear(x.to(rows.dtype), rows[:, :n_in], bias)


@contextlib.contextmanager
def _units_edit(model, outputs: dict):
    """Within the block, the given units of each site are replaced by ``fn(x, n_in)``:
    outputs {site: (units, fn)}, x the site module's input."""

    sites = layout_of(model).by_name
    edits = {
        name: Edit.replace(units, functools.partial(fn, n_in=sites[name].in_features))
        for name, (units, fn) in outputs.items()
    }
    with trace(model, keep=False, edit=edits):
        yield
