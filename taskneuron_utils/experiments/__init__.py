"""The paper's experiments, one module per section. Each experiment function takes a model (or a
model loader), a tokenizer, {name: Task} and its own frozen config, and returns a pandas
DataFrame (or a dict of artefacts) that a function in ``plots`` accepts.

    detection      Section 3: relevance, top-k neuron sets, exclusive sets, the main job
                   (``DetectionConfig``; ``detect``, ``neuron_sets``, ``exclusive_sets``,
                   ``main_job``)
    multitask      the multi-task fine-tuned "original" model of Table 1, cached
                   (``MultitaskConfig``; ``multitask_finetune``, ``multitask_mixture``)
    deactivation   Table 1: own vs random vs other tasks' neurons switched off
                   (``DeactivationConfig``; ``deactivation``, ``deactivation_summary``, ``table1``)
    finetuning     Table 2: training only the task's neurons vs random neurons vs everything
                   (``FinetuningConfig``; ``neuron_finetuning``, ``table2``)
    generalization Section 4: overlap and parameter similarity vs out-of-domain generalization
                   (to come)
    continual      Table 5: NCFT and W-NCFT continual learning (to come)

    common         helpers shared by the sections (samples, fresh models, atomic cache folders)
    profiles       ``Profile`` (one config per section) and ``PROFILES``: "quick" (CPU, the
                   embedded default model, shipped tasks; notebooks and CI) and "paper" (the
                   paper's models, data and k = 10%; GPUs)

    from taskneuron_utils import experiments as ex
    quick = ex.PROFILES["quick"]
    detection = quick.detection.replace(n_attribution=16)
    sets = ex.neuron_sets(ex.detect(model, tok, tasks, detection), detection)
    df = ex.deactivation(model, tok, tasks, quick.deactivation, sets=sets)
"""

from .deactivation import DeactivationConfig, deactivation, deactivation_summary, table1
from .detection import (DetectionConfig, detect, exclusive_sets, main_job, main_job_summary,
                        neuron_sets)
from .finetuning import FT_METHODS, FinetuningConfig, neuron_finetuning, table2
from .multitask import MultitaskConfig, multitask_finetune, multitask_mixture
from .profiles import PROFILES, Profile

__all__ = [
    "DetectionConfig", "detect", "neuron_sets", "exclusive_sets", "main_job", "main_job_summary",
    "MultitaskConfig", "multitask_finetune", "multitask_mixture",
    "DeactivationConfig", "deactivation", "deactivation_summary", "table1",
    "FinetuningConfig", "FT_METHODS", "neuron_finetuning", "table2",
    "Profile", "PROFILES",
]
