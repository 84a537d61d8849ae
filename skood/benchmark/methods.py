"""The benchmark's methods: what each trains with, and how its network is scored.

:data:`METHOD_SPECS` maps a training method's name to its :class:`MethodSpec`.
Every trained network is scored by each of the run's detectors (names of
:data:`skood.detectors.DETECTORS`): one training, many scores. A (training
method, detector) pair is a *scored method*, a row of the tables, named by
:func:`scored_name`: ``ce_energy``, ``ce_vim``, ``greg`` (GReg scored by the
energy it trains), ``greg_vim``, ... :data:`CHOSEN` (``ce_chosen``) is
cross-entropy scored by the detector chosen, per run, on held-out classes of
its training rows (:mod:`skood.benchmark.detector_choice`).
"""
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..detectors import DETECTORS
from ..energy_sampler import EnergySampler
from ..models import MLP, ResNet18, SmallCNN

__all__ = ["MethodSpec", "METHOD_SPECS", "METHODS", "SCORED_METHODS", "METRICS",
           "METHOD_LEGEND", "METHOD_WORDS", "BASELINE", "BASELINES", "MODELS", "CHOSEN",
           "SAME_DETECTOR", "DEFAULT_DETECTORS", "DETECTOR_ORDER", "scored_name",
           "scored_methods", "TRAIN_METHOD"]

#: the detectors of a run unless told (``skood benchmark --detectors``): the energy, the two
#: feature-space detectors and their fusion through conformal p-values
DEFAULT_DETECTORS = ("energy", "vim", "knn", "fused")
#: the detectors in table order (MSP first, the oldest baseline; then the registry's order)
DETECTOR_ORDER = ("msp",) + tuple(name for name in DETECTORS if name != "msp")
#: the scored method of cross-entropy with the detector chosen on held-out classes
CHOSEN = "ce_chosen"
#: the baseline "cross-entropy with the method's own detector" of the paired differences
SAME_DETECTOR = "ce_same_detector"

#: what each detector's score is, for the report's legend
DETECTOR_LEGEND = MappingProxyType({
    "msp": "the maximum softmax probability",
    "energy": "-energy (the log-sum-exp of the logits)",
    "maxlogit": "the largest logit",
    "mahalanobis": "minus the Mahalanobis distance of the features to the nearest class mean "
                   "(shared covariance)",
    "knn": "minus the distance of the normalised features to the k-th nearest training row's",
    "vim": "ViM: the energy minus a virtual logit from the features' residual outside their "
           "principal subspace",
    "react": "ReAct: the energy after clipping the features at a percentile of the training "
             "rows'",
    "fused": "energy, ViM and KNN fused: the Bonferroni minimum of their conformal p-values "
             "against the estimator's calibration rows",
})
#: each detector's name in the report's sentences
DETECTOR_WORDS = MappingProxyType({"msp": "MSP", "energy": "energy", "maxlogit": "MaxLogit",
                                   "mahalanobis": "Mahalanobis", "knn": "KNN", "vim": "ViM",
                                   "react": "ReAct", "fused": "fused"})


@dataclass(frozen=True)
class MethodSpec:
    """One training method of the benchmark.

    The benchmark's methods are the values of :data:`METHOD_SPECS`; each
    parameter is kept as the attribute of the same name.

    Parameters
    ----------
    params : mapping
        Parameters of :class:`skood.GradRegOODClassifier` that make the method.
    legend : str
        What it is (written into the report's legend).
    words : str
        Its name in the report's sentences.
    uses_outliers : bool, default=True
        Whether it trains on the auxiliary outliers (and so trains the energy
        score: its energy-scored method keeps the bare name, see
        :func:`scored_name`). The method without outliers is the starting
        point of the others under fine-tuning, and the reference of the
        accuracy gaps.
    sampler : bool, default=False
        Whether it draws its outliers with :class:`skood.EnergySampler`.

    Examples
    --------
    >>> from skood.benchmark import METHOD_SPECS
    >>> spec = METHOD_SPECS["ce"]
    >>> spec.words, spec.uses_outliers
    ('CE', False)
    >>> spec.scored_names("ce", ("msp", "energy"))
    ('ce_msp', 'ce_energy')
    """

    params: object
    legend: str
    words: str
    uses_outliers: bool = True
    sampler: bool = False

    def scored_names(self, name, detectors):
        """The names of its scored methods, one per detector (:func:`scored_name`).

        Parameters
        ----------
        name : str
            The training method's name (its key in :data:`METHOD_SPECS`).
        detectors : sequence of str
            Names of :data:`skood.detectors.DETECTORS`.

        Returns
        -------
        names : tuple of str
            In the order of ``detectors``.

        Examples
        --------
        >>> from skood.benchmark import METHOD_SPECS
        >>> METHOD_SPECS["greg"].scored_names("greg", ("energy", "vim"))
        ('greg', 'greg_vim')
        """
        return tuple(scored_name(name, detector) for detector in detectors)

    def estimator_params(self, pool_factor):
        """Its parameters of :class:`skood.GradRegOODClassifier`.

        Parameters
        ----------
        pool_factor : int
            The ``pool_factor`` of the :class:`skood.EnergySampler` a method
            with ``sampler=True`` (GReg+) gets; its other parameters keep their
            defaults (the sampler clips its clusters to the batch size itself).
            Unused by the other methods.

        Returns
        -------
        params : dict
            A new dict: ``params``, plus ``sampler`` (a new
            :class:`skood.EnergySampler`) when the method uses one.

        Examples
        --------
        >>> from skood.benchmark import METHOD_SPECS
        >>> METHOD_SPECS["greg"].estimator_params(6)
        {'lambda_grad': 1.0}
        >>> params = METHOD_SPECS["greg_plus"].estimator_params(2)
        >>> params["lambda_grad"], params["sampler"].pool_factor
        (1.0, 2)
        """
        params = dict(self.params)
        if self.sampler:
            params["sampler"] = EnergySampler(pool_factor=pool_factor)
        return params


#: training method name -> :class:`MethodSpec`, in table order
METHOD_SPECS = MappingProxyType({
    "ce": MethodSpec(
        params=MappingProxyType(dict(lambda_energy=0.0, lambda_grad=0.0)), uses_outliers=False,
        legend="cross-entropy only", words="CE"),
    "energy_oe": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=0.0)),
        legend="energy outlier exposure: cross-entropy plus the energy margin loss on the "
               "auxiliary outliers, i.e. GReg with lambda_grad=0", words="energy-OE"),
    "greg": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=1.0)),
        legend="GReg: energy outlier exposure plus the gradient penalty, random outliers",
        words="GReg"),
    "greg_plus": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=1.0)), sampler=True,
        legend="GReg+: GReg with the energy-based outlier sampler", words="GReg+"),
})

#: training methods, in table order
METHODS = tuple(METHOD_SPECS)
#: the training method without outliers: fine-tuning starts from it
START_METHOD = next(name for name, spec in METHOD_SPECS.items() if not spec.uses_outliers)


def scored_name(method, detector):
    """The name of ``method``'s network scored by ``detector``: a row of the tables.

    ``method + "_" + detector``, except that a method trained with outliers keeps its bare
    name with the energy, the score it trains (``greg``; cross-entropy trains no score, so
    ``ce_energy``).

    Parameters
    ----------
    method : str
        A key of :data:`METHOD_SPECS`.
    detector : str
        A name of :data:`skood.detectors.DETECTORS`.

    Returns
    -------
    str

    Examples
    --------
    >>> from skood.benchmark.methods import scored_name
    >>> scored_name("greg", "energy"), scored_name("greg", "knn"), scored_name("ce", "energy")
    ('greg', 'greg_knn', 'ce_energy')
    """
    if detector == "energy" and METHOD_SPECS[method].uses_outliers:
        return method
    return f"{method}_{detector}"


def scored_methods(methods=METHODS, detectors=DEFAULT_DETECTORS):
    """The scored methods of a run, in table order.

    Every training method of ``methods`` with every detector of ``detectors`` (in
    :data:`METHODS` and :data:`DETECTOR_ORDER` order), and :data:`CHOSEN` after the
    cross-entropy rows when cross-entropy runs with more than one detector to choose from.

    Parameters
    ----------
    methods : sequence of str, default=METHODS
        Training methods (keys of :data:`METHOD_SPECS`).
    detectors : sequence of str, default=DEFAULT_DETECTORS
        Names of :data:`skood.detectors.DETECTORS`.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> from skood.benchmark.methods import scored_methods
    >>> scored_methods(("greg", "ce"), ("knn", "energy"))
    ('ce_energy', 'ce_knn', 'ce_chosen', 'greg', 'greg_knn')
    """
    names = []
    for method in [m for m in METHODS if m in methods]:
        names += [scored_name(method, d) for d in DETECTOR_ORDER if d in detectors]
        if method == START_METHOD and len(set(detectors)) > 1:
            names.append(CHOSEN)
    return tuple(names)


#: every scored method there can be, in table order
SCORED_METHODS = scored_methods(METHODS, DETECTOR_ORDER)
#: scored method -> the training method whose network it scores
TRAIN_METHOD = MappingProxyType({**{scored_name(m, d): m for m in METHODS
                                    for d in DETECTOR_ORDER}, CHOSEN: START_METHOD})
#: scored method -> its detector (:data:`CHOSEN`'s is the run's choice, in its rows)
DETECTOR_OF = MappingProxyType({scored_name(m, d): d for m in METHODS for d in DETECTOR_ORDER})
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out")
#: what the rows' names mean (written into the report)
METHOD_LEGEND = MappingProxyType({
    **{scored_name(m, d): f"{spec.legend}, scored by {DETECTOR_LEGEND[d]}"
       for m, spec in METHOD_SPECS.items() for d in DETECTOR_ORDER},
    CHOSEN: "cross-entropy only, scored by the detector chosen for the run on held-out "
            "classes of its training rows (no OOD data; the row's detector column names it)"})
#: names in the report's sentences
METHOD_WORDS = MappingProxyType({
    **{scored_name(m, d): (spec.words if scored_name(m, d) == m
                           else f"{spec.words} ({DETECTOR_WORDS[d]})")
       for m, spec in METHOD_SPECS.items() for d in DETECTOR_ORDER},
    CHOSEN: "CE (chosen detector)", SAME_DETECTOR: "CE with the same detector"})
#: the methods every other is compared with, class split by class split: energy-OE and
#: CE-energy (the baselines of the training methods), GReg (GReg scored by the energy),
#: CE with the chosen detector, and CE with the method's own detector
BASELINES = ("energy_oe", "ce_energy", "greg", CHOSEN, SAME_DETECTOR)
#: the first of them
BASELINE = BASELINES[0]


def _mlp(image_shape, n_classes, channels):
    return dict(module=MLP, module__n_features=int(np.prod(image_shape)) * channels,
                module__n_classes=n_classes, module__hidden=(128, 128))


def _cnn(image_shape, n_classes, channels):
    return dict(module=SmallCNN, module__in_channels=channels, module__n_classes=n_classes,
                module__width=32)


def _resnet18(image_shape, n_classes, channels):
    return dict(module=ResNet18, module__in_channels=channels, module__n_classes=n_classes)


#: network name -> ``params(image_shape, n_classes, channels)``: the estimator's module
#: parameters
MODELS = MappingProxyType({"mlp": _mlp, "cnn": _cnn, "resnet18": _resnet18})


def module_params(model, image_shape, n_classes, channels=1):
    """The estimator's ``module`` parameters for the network ``model``."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}.")
    return MODELS[model](image_shape, n_classes, channels)
