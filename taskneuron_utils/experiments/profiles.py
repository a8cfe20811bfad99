"""The two run profiles: one config per experiment, bundled.

``quick``: CPU, the embedded default model, a few shipped tasks, a sample of each training
split; what the notebooks, the main job and CI run. ``paper``: Llama-2-7b and the paper's data
at full size, k = 10%; what a GPU user runs.

``profile.load_tasks()`` loads a profile's tasks from where they live: the shipped suite
(quick) or the paper's Hugging Face Hub data sets (paper; ``data_dir=`` or
``$TASKNEURON_HUB_DATA`` reads local copies instead, one folder per task, see ``tasks.hub``)::

    paper = PROFILES["paper"]
    tasks = paper.load_tasks()                              # the 12 tasks of Tables 1 and 2
    sets = neuron_sets(detect(model, tok, tasks, paper.detection), paper.detection)
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import ConfigMixin
from .continual.sequence import ContinualConfig
from .deactivation import DeactivationConfig
from .detection import DetectionConfig
from .finetuning import FinetuningConfig
from .generalization.sweep import GeneralizationConfig
from .multitask import MultitaskConfig
from ..tasks import PAPER_TASKS, load_tasks


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

    def load_tasks(self, names=None, **kwargs):
        """{name: Task} of ``names`` (default: the detection section's tasks) from this
        profile's source: the shipped suite for ``quick``, the hub data sets for ``paper``.
        ``kwargs`` go to ``tasks.load_tasks`` (``data_dir=``: a folder of local copies;
        for ``paper`` also ``split_sizes=``, ``cache_dir=``...)."""

        names = list(self.detection.tasks if names is None else names)
        return load_tasks(names, profile=self.detection.source, **kwargs)


PAPER_MODEL = "meta-llama/Llama-2-7b-hf"

PROFILES = {
    "quick": Profile("quick"),
    "paper": Profile(
        "paper",
        detection=DetectionConfig(
            model=PAPER_MODEL,
            tasks=PAPER_TASKS,
            source="paper",
            dtype="auto",
            device_map="auto",
            n_attribution=None,
            batch_size=8,
            max_length=512,
        ),
        # The paper's "original" model: multi-task fine-tuned on its twelve hub tasks.
        multitask=MultitaskConfig(
            model=PAPER_MODEL, tasks=PAPER_TASKS, source="paper", max_length=512
        ),
        finetuning=FinetuningConfig(max_length=512),
        # Table 5: the hub benchmarks (tasks.hub CONTINUAL_TASKS / CONTINUAL_LONG_TASKS) in
        # continual.PAPER_ORDERS; 1,000 training examples a task, 1 epoch, LoRA r 8.
        continual=ContinualConfig(
            examples=1000, steps=125, batch_size=8, n_eval=500, n_attribution=1000, max_length=512
        ),
        generalization=GeneralizationConfig(
            groups=(
                ("classification", ("amazon_food", "qqp", "mnli"), ("sst2", "paws", "gpt_nli")),
                ("generation", ("sciqa", "e2e", "cnn_dailymail"), ("tweetqa", "commongen", "xsum")),
            ),
            n_attribution=None,
            examples=1000,
            steps=500,
            batch_size=8,
            lrs=(1e-5, 1e-4),
            full_lrs=(1e-5, 2e-5),
            n_dev=200,
            n_eval=None,
            max_length=512,
        ),
    ),
}
