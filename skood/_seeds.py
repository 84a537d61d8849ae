"""The random streams of one fit, each seeded from the fit's seed apart from the others.

A fit draws one int seed from ``random_state`` (:func:`fit_seed`; it seeds
torch for the weight initialisation and the batch order). Every other consumer of randomness gets a
seed of its own derived from it, so that adding or removing one consumer (a
synthesizer, say) leaves the draws of the others as they were, and so that
the processes of a data-parallel fit draw different outliers:

- the outlier sampler: ``seed + process_index`` (:func:`sampler_seed`);
- the rows of the gradient penalty when ``penalty_fraction < 1``:
  ``SeedSequence([seed, process_index, 1])`` (:func:`penalty_seed`);
- the synthesizer's ``random_state``: ``SeedSequence([seed, 2])``
  (:func:`synthesizer_seed`);
- the split of the calibration rows in two halves when the ``detector`` is
  calibrated itself (:class:`skood.detectors.Fused`): ``SeedSequence([seed, 3])``
  (:func:`calibration_halves`).
"""
import numpy as np
import torch

from .exceptions import UnseededModuleWarning, warn_at_caller

__all__ = ["calibration_halves", "derived_seed", "fit_seed", "mark_pretrained", "penalty_seed",
           "sampler_seed", "synthesizer_seed", "warn_unseeded_instance"]

# Set on the copy that from_pretrained makes: its weights are trained, not drawn.
_PRETRAINED = "_skood_pretrained"


def fit_seed(random_state):
    """The fit's seed: one draw from the ``RandomState`` made of ``random_state``.

    The fit's calibration split draws from the same ``RandomState`` next.

    Parameters
    ----------
    random_state : numpy.random.RandomState

    Returns
    -------
    int
        In ``[0, 2**31 - 1)``.
    """
    return int(random_state.randint(np.iinfo(np.int32).max))


def derived_seed(*entropy):
    """An int seed drawn from ``numpy.random.SeedSequence(entropy)``.

    Parameters
    ----------
    *entropy : int

    Returns
    -------
    int
        In ``[0, 2**32)``.

    Examples
    --------
    >>> derived_seed(0, 2) == derived_seed(0, 2) != derived_seed(0, 1)
    True
    """
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def sampler_seed(seed, process_index):
    """The outlier sampler's seed: one stream per process of a data-parallel fit.

    Parameters
    ----------
    seed : int
        The fit's seed.
    process_index : int
        The process's rank (0 outside data-parallel training).

    Returns
    -------
    int
    """
    return seed + process_index


def penalty_seed(seed, process_index):
    """The seed of the generator that draws the gradient penalty's rows.

    Parameters
    ----------
    seed : int
        The fit's seed.
    process_index : int
        The process's rank (0 outside data-parallel training).

    Returns
    -------
    int
    """
    return derived_seed(seed, process_index, 1)


def synthesizer_seed(seed):
    """The ``random_state`` handed to ``synthesizer.make_outliers``.

    Parameters
    ----------
    seed : int
        The fit's seed.

    Returns
    -------
    int
    """
    return derived_seed(seed, 2)


def calibration_halves(n_rows, seed):
    """Two disjoint halves of ``range(n_rows)`` drawn at random under the fit's seed.

    The first (``n_rows // 2`` rows) calibrates a detector that is calibrated itself
    (:class:`skood.detectors.Fused`), the second (the other rows) ``offset_`` and the
    p-values. Random, not the rows' order: the calibration rows may come in the order
    of the data (sorted by class, say), and each half must be exchangeable with new rows.

    Parameters
    ----------
    n_rows : int
    seed : int
        The fit's seed.

    Returns
    -------
    first, second : ndarray of int
        Sorted row indices.

    Examples
    --------
    >>> first, second = calibration_halves(5, seed=0)
    >>> len(first), len(second), sorted([*first, *second]) == [0, 1, 2, 3, 4]
    (2, 3, True)
    """
    order = np.random.default_rng(derived_seed(seed, 3)).permutation(n_rows)
    half = n_rows // 2
    return np.sort(order[:half]), np.sort(order[half:])


def mark_pretrained(module):
    """Mark ``module`` (``from_pretrained``'s copy) as carrying trained weights, so that
    :func:`warn_unseeded_instance` leaves it alone; the mark travels with copies."""
    setattr(module, _PRETRAINED, True)
    return module


def warn_unseeded_instance(estimator):
    """Warn at a new fit when ``random_state`` is set but ``module`` is an instance (not
    from ``from_pretrained``): its initial weights were drawn when it was built, from
    torch's global generator, so ``random_state`` does not reproduce them.

    Re-drawing them under the seed (``reset_parameters``) would reach only the layers
    that define it and would silently discard weights a user set on purpose, so the
    instance is used as given and the user is told.

    Parameters
    ----------
    estimator : GradRegOODClassifier
    """
    module = estimator.module
    if (estimator.random_state is None or not isinstance(module, torch.nn.Module)
            or getattr(module, _PRETRAINED, False)):
        return
    warn_at_caller(
        f"random_state={estimator.random_state!r} does not seed the initial weights of a "
        f"module instance ({type(module).__name__}): they were drawn when it was built, "
        "from torch's global generator, so fits in other processes start from other "
        "weights. Pass the module's class (with module__* parameters) to have each fit "
        "draw them under random_state, or use GradRegOODClassifier.from_pretrained for "
        "trained weights.", UnseededModuleWarning)
