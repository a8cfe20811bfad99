"""Continual learning (the paper's Table 5 and App. A.2). The group's names are exported by
``experiments`` (``ex.continual``, ``ex.ContinualConfig``, ...).

sequence        ``continual``: a task sequence trained in order, ``ContinualConfig``,
                ``cl_metrics``; the paper's orders and numbers
methods         ``CLMethod`` (the interface) and the baselines: SeqFT, Replay, EWC, SeqLoRA,
                O-LoRA
neuron_methods  NCFT, random neurons and W-NCFT
references      the upper references (per-task fine-tuning) and ``choose_lrs`` on dev data
"""
