"""The public error classes, in one place: ``tn.errors.<Name>``.

Every one subclasses the builtin a caller would already catch (``ValueError``, ``KeyError``,
``OSError``, ``RuntimeError``); the module that raises it is named in each docstring. This
module imports nothing of the package: every layer may raise these. ``did_you_mean`` is the hint
of every unknown-argument message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(names: Iterable[str], valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"``: the nearest name in ``valid`` to each of ``names`` that has
    one (``difflib``), or ``""``."""
    valid = list(valid)
    guesses = [m for name in names for m in difflib.get_close_matches(str(name), valid, n=1)]
    return f" (did you mean {', '.join(map(repr, guesses))}?)" if guesses else ""


class UnsupportedArchitectureError(ValueError):
    """The model's family is not in the table; the message says how to register it."""


class NeuronSetMismatchError(ValueError):
    """A neuron set (or relevance) does not fit a model, or two come from different layouts."""


class SiteKindError(ValueError):
    """A site kind that does not exist (or that the model's family lacks)."""


class OffloadedWeightsError(ValueError):
    """An operation would write weights that accelerate keeps offloaded (on the meta device)."""


class ModelNotAvailableError(OSError):
    """A model could not be found locally and could not be downloaded."""


class ArtefactFileError(ValueError):
    """A file is missing, corrupt, or holds another kind of artefact."""


class HubRepoError(ValueError):
    """A hub repository (or local folder) that does not hold a taskneuron_utils artefact."""


class TaskDataError(ValueError):
    """Task data is malformed: bad JSON, a missing field, an empty split, an unknown label."""


class UnknownTaskError(KeyError, ValueError):
    """A task name that is not in the suite (or ``HUB_TASKS``); the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message wrapped in quotes
        return str(self.args[0]) if self.args else ""


class EncodingError(ValueError):
    """An example cannot be turned into tokens (empty answer, or it cannot fit ``max_length``)."""


class HubUnavailableError(RuntimeError):
    """A hub data set could not be fetched (no network, or ``HF_HUB_OFFLINE=1``)."""


class AnswerMaskError(ValueError):
    """An example has no answer token to score."""


class AttributionError(RuntimeError):
    """Attribution cannot proceed on this input (empty data, masked answers, NaN gradients)."""
