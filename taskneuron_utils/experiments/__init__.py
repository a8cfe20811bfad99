"""The paper's experiments, one module (or group) per section. Each experiment function takes a
model (or a model loader), a tokenizer, {name: Task} and its own frozen config, and returns a
pandas DataFrame (or a dict of artefacts) that a function in ``plots`` accepts. The top layer
but ``ui`` and ``cli``: it may import every layer below it, ``plots`` included.

    detection      Section 3: relevance, top-k neuron sets, exclusive sets, the main job
                   (``DetectionConfig``; ``detect``, ``neuron_sets``, ``exclusive_sets``,
                   ``main_job``)
    multitask      the multi-task fine-tuned "original" model of Table 1, cached
                   (``MultitaskConfig``; ``multitask_finetune``, ``multitask_mixture``; the
                   training examples it did not see, for detection on it: ``held_out``)
    deactivation   Table 1: own vs random vs other tasks' neurons switched off
                   (``DeactivationConfig``; ``deactivation``, ``deactivation_summary``, ``table1``;
                   per example: ``deactivation(per_example=True)``, ``aggregate_examples``)
    intervals      Table 1 with bootstrap intervals over test examples and random seeds, and a
                   "beyond random" verdict read off them (``table1_intervals``)
    sweeps         Table 1 over the fraction k switched off (``k_sweep``); Table 2 over training
                   budgets, one constant-lr run scored at every budget (``BudgetConfig``;
                   ``budget_sweep``, ``budget_table``, ``budget_contrasts``)
    specificity    task-specific or merely important? every set of one or more families off
                   on every task, the set x task effect matrix, diagonal dominance and
                   selectivity (``specificity``, ``deactivation_matrix``, ``specificity_scores``);
                   where the shared core sits and how large it fires (``core_profile``)
    faithfulness   faithfulness over k (MIB): a set kept alone or ablated, per k
                   (``FaithfulnessConfig``; ``faithfulness``, ``pair_metrics``, ``K_GRID``);
                   ``faithfulness_summary``: its curves and areas, CPR / CMD, with intervals
                   (``faithfulness_curves``, ``faithfulness_areas``)
    recipes        model or recipe? the localisation recipes side by side (paper, contrastive,
                   RelP, activation controls), Han et al.'s overlap ratio and selectivity
                   (``RECIPES``, ``RecipeConfig``; ``recipe_relevance``, ``recipe_sets``,
                   ``overlap_ratios``, ``selectivity``, ``selectivity_scores``,
                   ``recipe_verdict``)
    finetuning     Table 2: training only the task's neurons vs random neurons vs everything
                   (``FinetuningConfig``; ``neuron_finetuning``, ``table2``)
    generalization/  Section 4: does training the neurons of some tasks help other tasks?
                   ``sweep`` (``GeneralizationConfig``; ``proportion_sweep``,
                   ``pairwise_transfer``, ``similarity_vs_gain``), ``runs`` (the trained runs,
                   cached), ``stats`` (``correlations``, ``sweep_correlations``,
                   ``layer_correlations``, ``sweep_view``)
    continual/     Table 5: continual learning over a task sequence, NCFT / W-NCFT and the
                   baselines: ``sequence`` (``ContinualConfig``; ``continual``, ``cl_metrics``),
                   ``methods`` (``CLMethod`` to subclass; SeqFT, Replay, EWC, SeqLoRA, O-LoRA),
                   ``neuron_methods`` (NCFT, random neurons, W-NCFT), ``references``
                   (``continual_references``, ``choose_lrs`` on dev data)

    verdicts       what each experiment found, computed from its frame (``Verdict``;
                   ``table1_verdict``, ``specificity_verdict``, ``table2_verdict``,
                   ``generalization_verdict``, ``continual_verdict``, ``agreement_verdict``):
                   the notebooks' "What we found" and the replication report print these
    common         helpers shared by the sections (samples, fresh models, atomic cache folders)
    replicate/     ``taskneurons replicate``: the sections above as parts of one planned,
                   resumable run (memory and time per part first), and its report beside the
                   paper (``replicate``, ``settings_for``; imported as a subpackage, not here)
    profiles       ``Profile`` (one config per section) and ``PROFILES``: "quick" (CPU, the
                   embedded default model, shipped tasks; notebooks and CI) and "paper" (the
                   paper's models, data and k = 10%; GPUs)

    from taskneuron_utils import experiments as ex
    quick = ex.PROFILES["quick"]
    detection = quick.detection.replace(n_attribution=16)
    sets = ex.neuron_sets(ex.detect(model, tok, tasks, detection), detection)
    df = ex.deactivation(model, tok, tasks, quick.deactivation, sets=sets)
"""

from .continual.methods import CLMethod
from .continual.references import choose_lrs
from .continual.references import references as continual_references
from .continual.sequence import (
    CL_METHODS,
    PAPER_ORDERS,
    PAPER_TABLE5,
    QUICK_ORDERS,
    QUICK_SEQUENCE_4,
    QUICK_SEQUENCE_8,
    ContinualConfig,
    ContinualResult,
    cl_metrics,
    continual,
    forgetting_overlap,
    make_method,
)
from .deactivation import (
    DeactivationConfig,
    aggregate_examples,
    deactivation,
    deactivation_summary,
    table1,
)
from .detection import (
    DetectionConfig,
    detect,
    exclusive_sets,
    main_job,
    main_job_summary,
    neuron_sets,
)
from .faithfulness import K_GRID, FaithfulnessConfig, faithfulness, pair_metrics
from .faithfulness_summary import faithfulness_areas, faithfulness_curves
from .finetuning import FT_METHODS, FinetuningConfig, neuron_finetuning, table2
from ..neurons.analysis import PAPER_LAYER_CORRELATION  # beside the plots' import of it, no cycle
from .generalization.sweep import (
    GROUPS,
    GeneralizationConfig,
    pairwise_transfer,
    proportion_sweep,
    similarity_vs_gain,
)
from .intervals import table1_intervals
from .multitask import (
    MultitaskConfig,
    held_out,
    mixture_indices,
    multitask_finetune,
    multitask_mixture,
)
from .profiles import PROFILES, Profile
from .recipes import (
    RECIPES,
    Recipe,
    RecipeConfig,
    overlap_ratios,
    recipe_relevance,
    recipe_sets,
    recipe_verdict,
    selectivity,
    selectivity_scores,
)
from .specificity import core_profile, deactivation_matrix, specificity, specificity_scores
from .sweeps import BudgetConfig, budget_contrasts, budget_sweep, budget_table, k_sweep
from .generalization.stats import correlations, layer_correlations, sweep_correlations, sweep_view
from .verdicts import (
    Verdict,
    agreement_verdict,
    continual_verdict,
    generalization_verdict,
    specificity_verdict,
    table1_verdict,
    table2_verdict,
)

__all__ = [
    "DetectionConfig",
    "detect",
    "neuron_sets",
    "exclusive_sets",
    "main_job",
    "main_job_summary",
    "MultitaskConfig",
    "multitask_finetune",
    "multitask_mixture",
    "mixture_indices",
    "held_out",
    "DeactivationConfig",
    "deactivation",
    "deactivation_summary",
    "table1",
    "aggregate_examples",
    "table1_intervals",
    "k_sweep",
    "BudgetConfig",
    "budget_sweep",
    "budget_table",
    "budget_contrasts",
    "specificity",
    "deactivation_matrix",
    "specificity_scores",
    "core_profile",
    "K_GRID",
    "FaithfulnessConfig",
    "faithfulness",
    "faithfulness_curves",
    "faithfulness_areas",
    "pair_metrics",
    "RECIPES",
    "Recipe",
    "RecipeConfig",
    "recipe_relevance",
    "recipe_sets",
    "overlap_ratios",
    "selectivity",
    "selectivity_scores",
    "recipe_verdict",
    "FinetuningConfig",
    "FT_METHODS",
    "neuron_finetuning",
    "table2",
    "GeneralizationConfig",
    "GROUPS",
    "PAPER_LAYER_CORRELATION",
    "proportion_sweep",
    "pairwise_transfer",
    "similarity_vs_gain",
    "correlations",
    "sweep_correlations",
    "layer_correlations",
    "sweep_view",
    "Profile",
    "PROFILES",
    "ContinualConfig",
    "ContinualResult",
    "continual",
    "cl_metrics",
    "continual_references",
    "choose_lrs",
    "make_method",
    "forgetting_overlap",
    "CL_METHODS",
    "CLMethod",
    "QUICK_SEQUENCE_4",
    "QUICK_SEQUENCE_8",
    "QUICK_ORDERS",
    "PAPER_ORDERS",
    "PAPER_TABLE5",
    "Verdict",
    "table1_verdict",
    "specificity_verdict",
    "table2_verdict",
    "generalization_verdict",
    "continual_verdict",
    "agreement_verdict",
]
