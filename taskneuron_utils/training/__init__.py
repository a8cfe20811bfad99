"""Training: full, neuron-only (the paper's method) and LoRA. Imports every layer below it
(``errors`` ... ``attribution``).

    finetuning  ``finetune`` and what it trains (neuron rows, LoRA adapters)
    loop        the one training loop (accelerate, schedules, data parallel, checkpointing)
"""

from .finetuning import finetune, lora_targets

__all__ = ["finetune", "lora_targets"]
