"""The two run profiles: one config per experiment, bundled.

``quick``: CPU, the embedded default model, a few shipped tasks, a sample of each training
split; what the notebooks, the main job and CI run. ``paper``: Llama-2-7b and the paper's data
at full size, k = 10%; what a GPU user runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import ConfigMixin
from .continual import ContinualConfig
from .deactivation import DeactivationConfig
from .detection import DetectionConfig
from .finetuning import FinetuningConfig
from .generalization import GeneralizationConfig
from .multitask import MultitaskConfig


@dataclass(frozen=True)
class Profile(ConfigMixin):
    """One config per experiment: ``PROFILES["quick"].detection`` is the quick profile's
    ``DetectionConfig``; ``profile.replace(detection=...)`` swaps one section's config."""

    name: str
    detection: DetectionConfig = DetectionConfig()
    multitask: MultitaskConfig = MultitaskConfig()
    deactivation: DeactivationConfig = DeactivationConfig()
    finetuning: FinetuningConfig = FinetuningConfig()
    continual: ContinualConfig = ContinualConfig()
    generalization: GeneralizationConfig = GeneralizationConfig()


PAPER_MODEL = "meta-llama/Llama-2-7b-hf"
PAPER_TASKS = ("amazon_food", "sst2", "qqp", "paws", "mnli", "gpt_nli",
               "sciqa", "tweetqa", "e2e", "commongen", "cnn_dailymail", "xsum")

PROFILES = {
    "quick": Profile("quick"),
    "paper": Profile(
        "paper",
        detection=DetectionConfig(model=PAPER_MODEL, tasks=PAPER_TASKS, n_attribution=None,
                                  batch_size=8, max_length=512),
        multitask=MultitaskConfig(model=PAPER_MODEL, max_length=512),
        finetuning=FinetuningConfig(max_length=512),
        # Table 5: the hub benchmarks (tasks.hub CONTINUAL_TASKS / CONTINUAL_LONG_TASKS) in
        # continual.PAPER_ORDERS; 1,000 training examples a task, 1 epoch, LoRA r 8.
        continual=ContinualConfig(examples=1000, steps=125, batch_size=8, n_eval=500,
                                  n_attribution=1000, max_length=512),
        generalization=GeneralizationConfig(
            groups=(("classification", ("amazon_food", "qqp", "mnli"), ("sst2", "paws", "gpt_nli")),
                    ("generation", ("sciqa", "e2e", "cnn_dailymail"),
                     ("tweetqa", "commongen", "xsum"))),
            n_attribution=None, examples=1000, steps=500, batch_size=8, lrs=(1e-5, 1e-4),
            full_lrs=(1e-5, 2e-5),
            n_dev=200, n_eval=None, max_length=512),
    ),
}
