"""Where the benchmark's outlier methods get their auxiliary outliers (``aux=``).

A source is ``photos`` (crops of photographs, :func:`skood.datasets.make_natural_image_outliers`,
the default) or the lower-case, hyphenated name of a synthesizer of :mod:`skood.synthesis`
(``PatchShuffle`` is ``patch-shuffle``); sources join with ``+`` (``photos+patch-shuffle``:
the photographs *and* the synthesizer's outliers).
"""
import re
from types import MappingProxyType

from .. import synthesis

__all__ = ["PHOTOS", "SYNTHESIZERS", "AUX_SOURCES", "parse_aux", "make_synthesizer"]

#: the photograph crops
PHOTOS = "photos"


def _hyphenated(class_name):
    """``PatchShuffle`` -> ``patch-shuffle``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", class_name).lower()


#: source name -> synthesizer class, for every class of :data:`skood.synthesis.__all__`
SYNTHESIZERS = MappingProxyType({_hyphenated(name): getattr(synthesis, name)
                                 for name in synthesis.__all__})
#: every single source, photographs first
AUX_SOURCES = (PHOTOS, *SYNTHESIZERS)


def parse_aux(aux):
    """The sources of ``aux``, in order, or a ValueError that names the choices.

    Parameters
    ----------
    aux : str
        One source of :data:`AUX_SOURCES`, or several joined with ``+``, each once,
        at most one synthesizer.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> parse_aux("photos+patch-shuffle")
    ('photos', 'patch-shuffle')
    """
    choices = (f"one of {list(AUX_SOURCES)}, or photos and one synthesizer joined with '+' "
               "(e.g. 'photos+patch-shuffle')")
    if not isinstance(aux, str):
        raise ValueError(f"aux must be a string, {choices}; got {aux!r}.")
    sources = tuple(aux.split("+"))
    unknown = [s for s in sources if s not in AUX_SOURCES]
    if unknown:
        raise ValueError(f"aux must be {choices}; got {aux!r} (unknown: {unknown}).")
    if len(set(sources)) != len(sources):
        raise ValueError(f"aux must name each source once, {choices}; got {aux!r}.")
    if sum(s in SYNTHESIZERS for s in sources) > 1:
        # the estimator takes one synthesizer
        raise ValueError(f"aux may name at most one synthesizer, {choices}; got {aux!r}.")
    return sources


def make_synthesizer(aux):
    """A new instance (default parameters) of the synthesizer ``aux`` names, or None.

    The synthesizers take no seed of their own: the estimator calls
    ``make_outliers(X, y, random_state)`` with a seed drawn from its own
    ``random_state``, the run's estimator seed.
    """
    names = [s for s in parse_aux(aux) if s in SYNTHESIZERS]
    return SYNTHESIZERS[names[0]]() if names else None


def uses_photos(aux):
    """Whether ``aux`` includes the photograph crops."""
    return PHOTOS in parse_aux(aux)
