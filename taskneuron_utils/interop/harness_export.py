"""A shipped (or any) task as an lm-evaluation-harness task: a YAML file over local JSONL.

    tn.export_lm_eval_task(suite["product_sentiment"], tok, "harness_tasks")
    # lm-eval run --include_path harness_tasks --tasks tn_product_sentiment ...

Each exported document holds the prompt exactly as ``tn.evaluate`` builds it (``format_prompt``:
the tokenizer's chat template, or the plain template), so the harness scores the same text:

- classification -> ``output_type: multiple_choice``; ``choices`` are the option texts
  (``evaluation.option_text``: the label plus the end marker's text, e.g.
  ``"positive<|im_end|>"``), so the harness's ``acc`` / ``acc_norm`` / ``acc_bytes`` rank them as
  ``tn.evaluate``'s ``accuracy`` / ``accuracy_norm`` / ``accuracy_bytes`` do. With the plain
  template the answer follows "Answer:" after a space: that space is the ``target_delimiter``.
- generation -> ``output_type: generate_until``, ``exact_match`` ignoring case (ours also
  collapses whitespace), stopping at the end marker's text, with ``tn.evaluate``'s token budget.

The YAML is written as JSON (valid YAML), with the data file's absolute path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.storage import atomic_write_all
from ..tasks import Task, answer_ids, end_marker_id, format_prompt, has_chat_template
from ..scoring.evaluation import option_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def export_lm_eval_task(
    task: Task,
    tok: PreTrainedTokenizerBase,
    folder: str | os.PathLike,
    *,
    split: str = "test",
    n: int | None = None,
    name: str | None = None,
) -> Path:
    """Write ``folder/<name>.yaml`` and ``folder/<name>/<split>.jsonl`` (``name`` default
    ``tn_<task.name>``) for ``task``'s ``split`` (its first ``n`` examples); returns the YAML's
    path. Pass ``folder`` to the harness's ``--include_path`` (or ``TaskManager(include_path=)``).
    """
    if split not in task.splits:
        raise ValueError(
            f"task {task.name!r} has no {split!r} split (it has {sorted(task.splits)})"
        )
    examples = list(task.splits[split])[:n]
    if not examples:
        raise ValueError(f"task {task.name!r} has no examples in its {split!r} split")

    name = name or f"tn_{task.name}"
    folder = Path(folder).resolve()
    data = folder / name / f"{split}.jsonl"
    classification = task.category == "classification"
    # The plain template's answer follows "Answer:" after a space (tasks.answer_ids).
    delimiter = "" if has_chat_template(tok) else " "
    records = []
    for ex in examples:
        record = {"context": format_prompt(tok, task.instruction, ex.input), "output": ex.output}
        if classification:
            record["choices"] = [option_text(tok, label) for label in task.labels]
            record["gold"] = task.labels.index(ex.output)
        records.append(record)
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {split: str(data)}},
        "test_split": split,
        "doc_to_text": "context",
        "target_delimiter": delimiter,
    }
    if classification:
        config.update(
            output_type="multiple_choice",
            doc_to_choice="choices",
            doc_to_target="gold",
            metric_list=[
                {"metric": m, "aggregation": "mean", "higher_is_better": True}
                for m in ("acc", "acc_norm", "acc_bytes")
            ],
        )
    else:
        end = end_marker_id(tok)
        stop = [tok.decode([end])] if end is not None else []
        # tn.evaluate's default budget: the longest gold answer (end marker included) + 8.
        budget = max(len(answer_ids(tok, ex.output)) for ex in examples) + 8
        config.update(
            output_type="generate_until",
            doc_to_target="output",
            generation_kwargs={"until": stop, "do_sample": False, "max_gen_toks": budget},
            metric_list=[
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "ignore_case": True,
                    "ignore_punctuation": False,
                }
            ],
        )
    config["metadata"] = {
        "version": 1.0,
        "exported_by": "taskneuron_utils",
        "source_task": task.name,
        "n": len(records),
    }
    path = folder / f"{name}.yaml"
    # Both files or neither: a data file without its YAML (or the reverse) is no task.
    atomic_write_all(
        {
            data: lambda tmp: Path(tmp).write_text(lines, encoding="utf-8"),
            path: lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"),
        }
    )
    return path
