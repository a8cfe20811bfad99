"""Tasks: data, prompts and the token layout every other module relies on.

A ``Task`` is an instruction plus three ``Split``s of ``Example(input, output)`` pairs. A split
knows its task, so one object carries everything a consumer needs::

    suite = load_tasks()                              # the shipped suite, {name: Task}
    split = suite["product_sentiment"].train[:64]     # a Split (slices stay Splits)
    encoded = encode(tok, split)                      # [Encoded(input_ids, answer_start)]
    batch = collate(encoded, tok.pad_token_id)        # input_ids / attention_mask / labels

The modules, by concern (everything is importable from ``taskneuron_utils.tasks``):

    data.py       Example, Split, Task (from_records / from_jsonl / from_csv), readers, errors
    encoding.py   format_prompt, encode, collate, batches: the prompt + answer token layout
    pairs.py      check_pairs: minimal pairs (Task.pairs) checked for a tokenizer
    hub.py        load_hub_task: a hub data set (or local copies of it) as a Task
    hub_specs.py  HUB_TASKS (the paper's Hugging Face Hub data sets, as HubSpecs)
    suite.py      the shipped suite: default_data_dir, load_tasks

Data sources: the shipped suite in ``data/`` (``load_tasks``), your own records (dicts, a pandas
DataFrame or a ``datasets.Dataset``), JSONL or CSV (``Task.from_records`` / ``from_jsonl`` /
``from_csv``), and the paper's Hugging Face Hub data sets (``load_hub_task``, ``HUB_TASKS``),
which can also be read from local files in the data set's own column layout.
"""

from .data import (
    CATEGORIES,
    DEFAULT_SPLITS,
    METRICS,
    SPLIT_NAMES,
    Example,
    Split,
    Task,
    read_csv,
    read_jsonl,
)
from ..errors import EncodingError, HubUnavailableError, TaskDataError, UnknownTaskError
from .encoding import (
    Encoded,
    answer_ids,
    batches,
    collate,
    to_device,
    encode,
    end_marker_id,
    format_prompt,
    has_chat_template,
    prompt_ids,
)
from .hub import load_hub_task
from .pairs import check_pairs
from .hub_specs import (
    CONTINUAL_LONG_TASKS,
    CONTINUAL_TASKS,
    GLUE,
    HUB_TASKS,
    NLI,
    PAPER_TASKS,
    TRAIN_TEST,
    TRAIN_VAL,
    TRAIN_VAL_TEST,
    HubSpec,
)
from .suite import default_data_dir, load_tasks

__all__ = [
    # data
    "CATEGORIES",
    "DEFAULT_SPLITS",
    "METRICS",
    "SPLIT_NAMES",
    "EncodingError",
    "HubUnavailableError",
    "TaskDataError",
    "UnknownTaskError",
    "Example",
    "Split",
    "Task",
    "read_csv",
    "read_jsonl",
    # encoding
    "Encoded",
    "answer_ids",
    "batches",
    "collate",
    "to_device",
    "encode",
    "end_marker_id",
    "format_prompt",
    "has_chat_template",
    "prompt_ids",
    # pairs
    "check_pairs",
    # hub
    "CONTINUAL_LONG_TASKS",
    "CONTINUAL_TASKS",
    "GLUE",
    "HUB_TASKS",
    "NLI",
    "PAPER_TASKS",
    "TRAIN_TEST",
    "TRAIN_VAL",
    "TRAIN_VAL_TEST",
    "HubSpec",
    "load_hub_task",
    # suite
    "default_data_dir",
    "load_tasks",
]
