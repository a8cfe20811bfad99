"""Training: full, neuron-only (the paper's method) and LoRA. Imports every layer below it
(``errors`` ... ``attribution``).

    config      ``TrainConfig`` (the loop's settings, the loss included) and ``LoRAConfig``
    finetuning  ``finetune`` and what it trains (neuron rows, LoRA adapters)
    loop        the one training loop (accelerate, schedules, data parallel, checkpointing)
"""

from .config import LoRAConfig, TrainConfig
from .finetuning import finetune, lora_targets

__all__ = ["LoRAConfig", "TrainConfig", "finetune", "lora_targets"]
