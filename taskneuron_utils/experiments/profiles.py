"""The two run profiles: one config per experiment, bundled.

``quick``: CPU, the embedded default model, a few shipped tasks, a sample of each training
split; what the notebooks, the main job and CI run. ``paper``: Llama-2-7b and the paper's data
at full size, k = 10%; what a GPU user runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import ConfigMixin
from .deactivation import DeactivationConfig
from .detection import DetectionConfig
from .finetuning import FinetuningConfig
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
    ),
}
