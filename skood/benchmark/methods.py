"""The benchmark's methods: what each trains with and how it is scored.

:data:`METHOD_SPECS` maps a training method's name to its :class:`MethodSpec`.
A method scored more than one way gives one *scored method* per scorer
(``ce`` gives ``ce_msp`` and ``ce_energy``); the tables' rows are the scored
methods, :data:`SCORED_METHODS`.
"""
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..energy_sampler import EnergySampler
from ..models import MLP, ResNet18, SmallCNN

__all__ = ["MethodSpec", "METHOD_SPECS", "METHODS", "SCORED_METHODS", "METRICS",
           "METHOD_LEGEND", "METHOD_WORDS", "BASELINE", "BASELINES", "MODELS"]


def _msp(clf, X):
    """The maximum softmax probability."""
    return clf.predict_proba(X).max(axis=1)


def _energy(clf, X):
    """The estimator's ``score_samples``: -energy."""
    return clf.score_samples(X)


#: scorer name -> ``scorer(clf, X)``, higher = more in-distribution
SCORERS = MappingProxyType({"msp": _msp, "energy": _energy})


@dataclass(frozen=True)
class MethodSpec:
    """One training method of the benchmark.

    The benchmark's methods are the values of :data:`METHOD_SPECS`; each
    parameter is kept as the attribute of the same name.

    Parameters
    ----------
    params : mapping
        Parameters of :class:`skood.GradRegOODClassifier` that make the method.
    scorers : tuple of str
        Keys of :data:`SCORERS`; one scored method per scorer.
    legend : mapping
        Scored method name -> what it is (written into the report).
    words : mapping
        Scored method name -> its name in the report's sentences.
    uses_outliers : bool, default=True
        Whether it trains on the auxiliary outliers. The method without
        outliers is the starting point of the others under fine-tuning, and
        the reference of the accuracy gaps.
    sampler : bool, default=False
        Whether it draws its outliers with :class:`skood.EnergySampler`.

    Examples
    --------
    >>> from skood.benchmark import METHOD_SPECS
    >>> spec = METHOD_SPECS["ce"]
    >>> spec.scorers, spec.uses_outliers
    (('msp', 'energy'), False)
    >>> spec.scored_names("ce")
    ('ce_msp', 'ce_energy')
    """

    params: object
    scorers: tuple
    legend: object
    words: object
    uses_outliers: bool = True
    sampler: bool = False

    def scored_names(self, name):
        """The names of its scored methods, one per scorer.

        Parameters
        ----------
        name : str
            The training method's name (its key in :data:`METHOD_SPECS`).

        Returns
        -------
        names : tuple of str
            ``(name,)`` for a method with one scorer; otherwise
            ``name + "_" + scorer`` for each of its ``scorers``, in order.

        Examples
        --------
        >>> from skood.benchmark import METHOD_SPECS
        >>> METHOD_SPECS["greg"].scored_names("greg")
        ('greg',)
        >>> METHOD_SPECS["ce"].scored_names("ce")
        ('ce_msp', 'ce_energy')
        """
        if len(self.scorers) == 1:
            return (name,)
        return tuple(f"{name}_{scorer}" for scorer in self.scorers)

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
        params=MappingProxyType(dict(lambda_energy=0.0, lambda_grad=0.0)),
        scorers=("msp", "energy"), uses_outliers=False,
        legend={"ce_msp": "cross-entropy only, scored by the maximum softmax probability",
                "ce_energy": "cross-entropy only, scored by -energy (the log-sum-exp of the "
                             "logits)"},
        words={"ce_msp": "CE (MSP)", "ce_energy": "CE (energy)"}),
    "energy_oe": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=0.0)), scorers=("energy",),
        legend={"energy_oe": "energy outlier exposure: cross-entropy plus the energy margin "
                             "loss on the auxiliary outliers, i.e. GReg with lambda_grad=0"},
        words={"energy_oe": "energy-OE"}),
    "greg": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=1.0)), scorers=("energy",),
        legend={"greg": "GReg: energy outlier exposure plus the gradient penalty, random "
                        "outliers"},
        words={"greg": "GReg"}),
    "greg_plus": MethodSpec(
        params=MappingProxyType(dict(lambda_grad=1.0)), scorers=("energy",), sampler=True,
        legend={"greg_plus": "GReg+: GReg with the energy-based outlier sampler"},
        words={"greg_plus": "GReg+"}),
})

#: training methods, in table order
METHODS = tuple(METHOD_SPECS)
#: rows of the tables: a method scored two ways gives two rows
SCORED_METHODS = tuple(scored for name, spec in METHOD_SPECS.items()
                       for scored in spec.scored_names(name))
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out")
#: what the rows' names mean (written into the report)
METHOD_LEGEND = MappingProxyType({k: v for spec in METHOD_SPECS.values()
                                  for k, v in spec.legend.items()})
#: names in the report's sentences
METHOD_WORDS = MappingProxyType({k: v for spec in METHOD_SPECS.values()
                                 for k, v in spec.words.items()})
#: the methods every other is compared with, class split by class split
BASELINES = ("energy_oe", "ce_energy")
#: the first of them
BASELINE = BASELINES[0]
#: the training method without outliers: fine-tuning starts from it
START_METHOD = next(name for name, spec in METHOD_SPECS.items() if not spec.uses_outliers)
#: the scored method whose ID accuracy the others are compared with (the
#: network's accuracy does not depend on the scorer: its first scored name)
ACCURACY_REFERENCE = METHOD_SPECS[START_METHOD].scored_names(START_METHOD)[0]
#: scored methods trained with outliers (the rows of the accuracy gaps)
OUTLIER_SCORED_METHODS = tuple(scored for name, spec in METHOD_SPECS.items()
                               if spec.uses_outliers for scored in spec.scored_names(name))


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
