"""Scoring a model on task data. Imports ``errors``, ``core``, ``tasks``, ``io``, ``neurons``
and ``hooks``.

    loss            the loss everything agrees on: causal-LM loss on the answer tokens only
    contrast        the logit difference of minimal pairs, logit(A_1) - logit(B_1)
    option_scoring  the log-likelihood of every label option (classification)
    generation      batched greedy decoding, exact match and ROUGE-L
    evaluation      ``evaluate``: the task's metric plus the answer NLL
"""

from .contrast import logit_difference, logit_differences
from .evaluation import evaluate
from .loss import answer_losses, answer_nll

__all__ = ["answer_losses", "answer_nll", "evaluate", "logit_difference", "logit_differences"]
