"""GradRegOODClassifier: GReg training inside skorch, with scikit-learn's OOD API.

This module holds the estimator's declaration (parameters and defaults), the
building of its network, the orchestration of a fit, the calibration of its
thresholds, persistence and the public scoring API. The rest lives beside it:
the parameter checks and ``set_params`` (:mod:`skood._params`), the training
step and per-fit state (:mod:`skood._training`), the checked input of a fit
(:mod:`skood._fit_input`, with :mod:`skood._labels`, :mod:`skood._splits` and
:mod:`skood._outliers`), the probe of the network (:mod:`skood._network`), the
loss of a step (:mod:`skood._objective`) and the calibration file
(:mod:`skood._calibration_io`).
"""
import copy
import inspect
import numbers

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring

from ._calibration_io import (calibration_record, check_calibration_state, check_output_width,
                              read_calibration, write_calibration)
from ._fit_input import INPUT_ATTRIBUTES, fit_input
from ._labels import OUTLIER_LABEL
from ._network import check_finite_items, check_held_out_scores, check_module_outputs
from ._objective import AMP_DTYPES, HISTORY_KEYS, PENALTIES, first_output
from ._params import ParamsMixin
from ._scoring import DEFAULT_DETECTOR, ROWS_ATTRIBUTE, ScoringMixin
from ._seeds import mark_pretrained, warn_unseeded_instance
from ._training import TrainingMixin
from ._validation import check_dataset, check_features, dataset_labels, is_dataset, loader_params
from .callbacks import ChanceLevelCheck, TerminalPrintLog
from .conformal import (benjamini_hochberg, class_conditional_pvalues,
                        class_conditional_thresholds, conformal_pvalues, conformal_threshold)
from .data import LabelledRows
from .detectors import DETECTORS
from .exceptions import NonFiniteLossError, warn_at_caller
from .metrics import id_accuracy

__all__ = ["GradRegOODClassifier"]

# Momentum of the default optimizer (SGD): skorch's default SGD has none, with
# which a GReg fit from scratch can stay at chance (docs/tuning.md).
DEFAULT_SGD_MOMENTUM = 0.9

# What the fitted OOD state consists of.
CALIBRATION_ATTRIBUTES = ("offset_", "calibration_scores_", "calibration_classes_",
                          "class_offsets_")


def _valid_accuracy(net, X, y):
    """Accuracy on skorch's validation split, whose ``y`` holds encoded class indices."""
    return float(np.mean(net._predict_index(X) == np.asarray(y)))


class GradRegOODClassifier(ScoringMixin, ParamsMixin, TrainingMixin, NeuralNetClassifier):
    """Neural network classifier trained with GReg to detect out-of-distribution inputs.

    Each training step forwards an in-distribution (ID) batch and a batch of
    auxiliary outliers together, in one concatenated batch, and minimises::

        CE(f(x_in), y_in)
          + lambda_energy * (mean relu(E(x_in) - m_in)^2 + mean relu(m_out - E(x_aux))^2)
          + lambda_grad   * mean_r || d S / d x_r ||_2

    where ``E(x) = -temperature * logsumexp(f(x) / temperature)`` is the energy and
    ``S = -mean relu(m_in - E(x_in)) + mean relu(E(x_aux) - m_out)`` only involves
    samples that are already correctly detected (Sharifi et al., "Gradient-Regularized
    Out-of-Distribution Detection", ECCV 2024). The input gradient is taken from the
    same forward (``create_graph=True``), with the paper's code's masking and scaling,
    so ``lambda_grad=1.0`` means what it means there.

    Everything :class:`skorch.NeuralNetClassifier` takes is accepted too; the module
    must return logits (one column per ID class). Three defaults differ from
    skorch's: the optimizer is SGD with ``lr=0.05`` and ``momentum=0.9`` (skorch:
    ``lr=0.01``, no momentum, with which a GReg fit from scratch can stay at
    chance; set ``optimizer__momentum`` to change it), the training batches are
    shuffled (``iterator_train__shuffle=True``), and a
    :class:`skood.callbacks.ChanceLevelCheck` warns when a fit ends at chance.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        The network; its forward returns logits of shape ``(n, n_classes)``. A
        class taking ``n_features`` / ``n_classes`` gets them from the data
        (see :meth:`initialize_module`); an instance is copied at each fit
        (see :meth:`from_pretrained`). A class's initial weights are drawn
        under ``random_state``; an instance's were drawn when it was built
        and are used as they are (see ``random_state``).
    *args
        skorch's positional parameters after ``module`` (rarely used).
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        The classification loss on the ID rows, applied to logits.
    lambda_energy : float, default=0.1
        Weight of the energy margin loss. With ``lambda_energy=0`` and
        ``lambda_grad=0`` the outliers are not used at all (plain cross-entropy).
    lambda_grad : float, default=1.0
        Weight of the gradient penalty; ``0`` gives energy outlier exposure.
    m_in, m_out : float, default=-25.0, -7.0
        Energy margins for ID samples and outliers; ``m_in < m_out``.
    temperature : float, default=1.0
        Temperature of the energy.
    ood_tpr : float, default=0.95
        Fraction of in-distribution samples that :meth:`predict_ood` accepts,
        guaranteed for new ID data exchangeable with the held-out calibration
        rows (see ``offset_``).
    reject_ood : bool, default=False
        If True, :meth:`predict` returns -1 for the samples that
        :meth:`predict_ood` rejects (with unsigned integer classes, as a signed
        integer dtype wide enough for the classes and -1, e.g. int16 for uint8).
    aux_batch_ratio : float or None, default=None
        Outliers per ID sample in each step, in every sampling mode; ``None``
        means the paper's setting for the sampler: 1 for random outliers, 2 for
        the two-way energy sampler.
    sampler : None, "random", "energy" or EnergySampler, default=None
        How outliers are chosen. ``None`` / ``"random"`` (GReg): at random,
        walking through all of them without replacement (every outlier is used
        once before any is reused). ``"energy"`` or an :class:`skood.EnergySampler`
        (GReg+): k-means on the features of a candidate pool, keeping the
        lowest- and highest-energy samples of each cluster.
    synthesizer : object with ``make_outliers`` or None, default=None
        Makes auxiliary outliers from the training data, e.g. one of
        :mod:`skood.synthesis`. Called once per fit as
        ``synthesizer.make_outliers(X_train, y_train, random_state)`` on the
        in-distribution rows the network trains on (not on the validation or
        calibration rows, so that a cross-validated search compares outlier
        sources without leakage), with an int seed derived from
        ``random_state``; it returns rows shaped like ``X``'s, which join
        ``X_aux`` and the rows labelled -1. ``None``: no outliers are made.
        ``synthesizer__<name>`` parameters reach an estimator-valued one.
    penalty : {"exact", "fd"}, default="exact"
        ``"exact"``: the input-gradient norm by double backward from the one
        forward. ``"fd"``: a finite-difference estimate of the same per-sample
        norm along the normalised input gradient (a second forward, no double
        backward; works with ``torch.compile`` and data-parallel training).
    fd_step : float, default=1e-2
        Step size of the ``"fd"`` estimate, in input units.
    penalty_fraction : float in (0, 1], default=1.0
        Fraction of each step's rows on which the gradient penalty is computed.
        ``1.0``: every row, from the step's one forward (the paper's penalty).
        Below 1: ``round(penalty_fraction * n)`` of the ID rows and of the
        outlier rows (at least one of each), drawn anew at every step from a
        generator seeded by ``random_state``, get a forward of their own (with
        the running statistics of norm layers frozen), and the penalty is
        rescaled so that its expectation equals the whole-batch penalty for a
        network whose rows do not interact. BatchNorm in train mode couples the
        rows (the subset is normalised with its own statistics), so there the
        estimate is close to, not exactly, unbiased. The penalty's cost shrinks
        with the fraction; see ``docs/tuning.md`` for the measured cost and its
        effect on detection.
    amp : {None, "bf16", "fp16"}, default=None
        Mixed precision for the training forwards (``torch.autocast`` on the
        training device); ``"fp16"`` uses a GradScaler with the
        gradient-penalty recipe. Prediction always runs in float32. The default
        is float32 because the reference measurement found bf16 double backward
        slower than float32.
    calibration_fraction : float, default=0.1
        Only used when ``train_split=None``: the stratified fraction of ID rows
        held out of training to calibrate ``offset_``. With skorch's validation
        split (the default ``train_split``), ``offset_`` is calibrated on the
        validation rows instead and nothing more is held out.
    calibration : {"marginal", "class"}, default="marginal"
        ``"marginal"``: one threshold ``offset_`` for all samples, and p-values
        against all calibration scores. ``"class"``: one threshold per
        predicted class (``class_offsets_``) and p-values against the
        calibration rows of the sample's predicted class (Mondrian conformal),
        so that each class keeps an acceptance of at least ``ood_tpr``, also
        on imbalanced data. A class needs ``ceil(1 / (1 - ood_tpr)) - 1``
        calibration rows (19 at 0.95); a class with fewer gets the marginal
        threshold and the marginal p-values (:meth:`ood_pvalues`), with a
        warning naming it.
    detector : str or detector object, default="energy"
        The OOD score of :meth:`score_samples`, which ``offset_``, the
        p-values, ``fdr=``, the per-class thresholds and ``reject_ood`` all
        use. ``"energy"``: minus the energy of the logits at ``temperature``
        (no detector is fitted, no features computed). Another name of
        :data:`skood.detectors.DETECTORS` (``"msp"``, ``"maxlogit"``,
        ``"mahalanobis"``, ``"knn"``, ``"vim"``, ``"react"``, ``"fused"``) or
        a detector object (with ``fit``, ``score_samples`` and ``needs``, see
        :class:`skood.detectors.BaseDetector`): after training, a clone is
        fitted (``detector_``) on the features (the input of the network's last
        ``nn.Linear``) and logits of the rows the network trained on -- never
        the calibration or validation rows -- read in batches on the training
        device, one forward capturing both; under a Dataset ``X`` they are read
        through ``X`` as training reads them (its transform included). Its
        scores are kept as float32. A detector calibrated itself
        (:class:`~skood.detectors.Fused`, ``"fused"``) is calibrated on a
        random half of the calibration rows (drawn under ``random_state``), and
        ``offset_``, the p-values and the per-class thresholds on the other
        half, so that their guarantees hold for the fused score (each gets
        half the rows). See ``docs/detectors.md``.
    random_state : int, RandomState or None, default=None
        Seeds the weight initialisation, the batch order, the outlier draw and
        the calibration split, without touching torch's global random state.
        With an int, two fits on the CPU give identical results, in one
        process or in several, when ``module`` is a class. A module
        *instance* keeps the weights it was built with (drawn from torch's
        global generator, so they differ between processes unless torch was
        seeded before building it): a new fit with ``random_state`` set warns
        with :class:`~skood.exceptions.UnseededModuleWarning`, except for an
        estimator made by :meth:`from_pretrained`, whose trained weights are
        meant to be the start.
    **kwargs
        Every other parameter of :class:`skorch.NeuralNetClassifier`
        (``optimizer``, ``lr``, ``max_epochs``, ``batch_size``, ``train_split``,
        ``callbacks``, ``device``, ``module__*``, ``optimizer__*``, ...).

    Attributes
    ----------
    classes_ : ndarray
        The ID classes (never -1).
    offset_ : float
        Threshold on :meth:`score_samples`: :meth:`ood_decision_function` is
        ``score_samples(X) - offset_``. Chosen by the conformal order-statistic
        rule on the ``n`` held-out calibration scores: with
        ``k = floor((n + 1) * (1 - ood_tpr))``, ``offset_`` is the ``k``-th
        smallest (``-inf`` when ``k = 0``, with a ``SmallCalibrationWarning``:
        use at least ``ceil(1 / (1 - ood_tpr)) - 1`` rows). If new ID samples
        and the calibration rows are exchangeable (same distribution,
        calibration rows not used in training), ``P(accepted) >= ood_tpr`` for
        any ``n``, over the calibration draw and the new sample.
    calibration_scores_ : ndarray of shape (n_calibration,), float32
        The held-out ID rows' scores, sorted ascending (4 bytes per row), for
        :meth:`ood_pvalues`.
    calibration_classes_ : ndarray of shape (n_calibration,), int32
        The predicted class index of each calibration score (4 bytes per row),
        for ``calibration="class"`` (also set later with :meth:`set_params`).
    class_offsets_ : ndarray of shape (n_classes,)
        With ``calibration="class"``: the threshold of each predicted class.
    detector_ : detector object
        With a ``detector`` other than ``"energy"``: the fitted clone that
        scores samples. Its size is the detector's (``KNN`` stores the
        training rows' normalised features).
    input_shape_ : tuple
        The shape of one sample of ``X``.
    n_features_in_ : int
        ``X.shape[1]`` at fit (for a Dataset ``X``: the first dimension of a sample).
    feature_names_in_ : ndarray
        Column names, when ``X`` was a DataFrame.
    history_ : skorch History
        Per epoch, beside skorch's ``train_loss`` (the total loss) and
        ``valid_loss``: ``train_ce``, ``train_energy_loss`` (unweighted margin
        loss), ``train_grad_penalty`` (unweighted), and ``train_energy_in`` /
        ``train_energy_aux`` (mean energies of the ID and outlier batches, to
        compare with ``m_in`` and ``m_out``), ``train_acc`` (accuracy on the
        training batches) and ``valid_acc``. Terms a fit does not compute are
        NaN: the energies, margin loss and penalty of a cross-entropy-only fit,
        the penalty when ``lambda_grad=0``.

    Notes
    -----
    Score conventions, as scikit-learn's outlier detectors: :meth:`score_samples`
    is ``-energy`` (or the ``detector``'s score), higher = more in-distribution;
    :meth:`ood_decision_function` is ``>= 0`` for accepted (ID) samples;
    :meth:`predict_ood` returns +1 for ID and -1 for OOD. :meth:`decision_function`
    returns class scores, as every scikit-learn classifier's does (on
    :class:`~skood.GradRegOODDetector`, an outlier detector, it is the OOD
    decision).

    A fitted model's network, scores and thresholds always belong together.
    :meth:`set_params` on a fitted model:

    - ``module``, ``module__*``, ``compile*`` (skorch re-initialises the
      network), ``temperature`` (changes the scores) and ``classes`` (changes
      the labels): the fitted OOD state (``offset_``, ``calibration_scores_``,
      ``calibration_classes_``, ``class_offsets_``, ``detector_``) is dropped
      and the model is unfitted; its methods raise ``NotFittedError`` naming
      the ``set_params`` call, until the next :meth:`fit` or
      :meth:`partial_fit` (which, after ``module=...``, builds the new
      network);
    - ``detector``: the new detector is fitted on the rows the network trained
      on in the last :meth:`fit` (or :meth:`partial_fit` call), and
      ``offset_``, the calibration scores and ``class_offsets_`` are
      recalibrated on that fit's calibration rows, without training: the model
      is then the one a fit with this detector and the same ``random_state``
      gives (bit for bit on the same device; for a Dataset ``X`` whose
      transform draws from a generator of its own, with other draws). The
      model keeps references to those rows in memory for this, never in a
      file: a model loaded from disk (pickle, joblib, ``load_params``) or
      copied does not have them, and ``set_params(detector=...)`` leaves it
      unfitted, with a warning, as a change of ``temperature`` does;
    - ``ood_tpr`` and ``calibration``: ``offset_`` and ``class_offsets_`` are
      recomputed from the stored calibration scores, exactly as a fit with
      those values would set them;
    - every other parameter (training ones such as ``lr``, ``max_epochs``,
      ``lambda_*``, ``m_in``, ``m_out``, ``sampler``, ``penalty*``,
      ``optimizer__*``, ``criterion__*``; prediction ones such as
      ``reject_ood``, ``batch_size``, ``verbose``, ``callbacks``):
      the fitted model stays as it is, as scikit-learn's ``set_params`` leaves
      fitted attributes alone; training parameters take effect at the next fit;
    - ``device``: the network, the criterion and the optimizer's state move
      there (``None`` leaves them where they are); a device this machine
      cannot use (e.g. ``"cuda"`` without a GPU) is refused and nothing changes.

    Every method that takes ``X`` also takes a torch ``Dataset`` whose items
    are samples or ``(sample, label)`` pairs (the label is not used), read in
    batches of ``batch_size`` as float32; the shape of its first sample must
    be ``input_shape_``. :meth:`fit` trains on such a Dataset too, e.g. with
    a random augmentation as its transform (see :meth:`fit` and ``X_eval``).

    A fit whose input checks refuse ``X``, ``y``, ``X_aux`` or the fit
    parameters leaves the model as it was. A fit that fails once it has begun
    to change the model (building the network, checking its outputs, training)
    leaves it unfitted, unless the error is a
    :class:`~skood.NonFiniteLossError` (see :meth:`fit`).

    A ``set_params`` call that is refused (an unknown name, on a fitted model a
    value outside this class's ``_parameter_constraints``, a threshold that
    cannot be computed, or an error from skorch) changes nothing: the names and
    values are checked before anything is set, and the model is restored if a
    later step fails. (An unfitted model's values are checked at fit.)

    Examples
    --------
    >>> import numpy as np
    >>> from skood import GradRegOODClassifier
    >>> from skood.models import MLP
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> X_aux = rng.uniform(-6, 6, size=(200, 4)).astype("float32")
    >>> clf = GradRegOODClassifier(MLP, module__hidden=(32,), max_epochs=20, batch_size=32,
    ...                            m_in=-12.0, m_out=-4.0, verbose=0, random_state=0)
    >>> clf = clf.fit(X, y, X_aux=X_aux)
    >>> clf.score(X, y) > 0.9
    True
    >>> float((clf.predict_ood(X_aux) == 1).mean()) < 0.1
    True
    """

    # The data's sizes for initialize_module, set only while fit initialises the network.
    _data_shape = None
    # Why a model that was fitted is not any more (see _drop_fitted_state); None otherwise.
    _unfitted_reason = None

    def __init__(
            self,
            module,
            *args,
            criterion=torch.nn.CrossEntropyLoss,
            lambda_energy=0.1,
            lambda_grad=1.0,
            m_in=-25.0,
            m_out=-7.0,
            temperature=1.0,
            ood_tpr=0.95,
            reject_ood=False,
            aux_batch_ratio=None,
            sampler=None,
            synthesizer=None,
            penalty="exact",
            fd_step=1e-2,
            penalty_fraction=1.0,
            amp=None,
            calibration_fraction=0.1,
            calibration="marginal",
            detector=DEFAULT_DETECTOR,
            random_state=None,
            **kwargs
    ):
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("lr", 0.05)
        super().__init__(module, *args, criterion=criterion, **kwargs)
        self.lambda_energy = lambda_energy
        self.lambda_grad = lambda_grad
        self.m_in = m_in
        self.m_out = m_out
        self.temperature = temperature
        self.ood_tpr = ood_tpr
        self.reject_ood = reject_ood
        self.aux_batch_ratio = aux_batch_ratio
        self.sampler = sampler
        self.synthesizer = synthesizer
        self.penalty = penalty
        self.fd_step = fd_step
        self.penalty_fraction = penalty_fraction
        self.amp = amp
        self.calibration_fraction = calibration_fraction
        self.calibration = calibration
        self.detector = detector
        self.random_state = random_state

    # ------------------------------------------------------------------ set-up

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            *[(name, PassthroughScoring(name=name, on_train=True))
              for name in HISTORY_KEYS.values()],
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("train_acc", PassthroughScoring(name="train_acc", on_train=True,
                                             lower_is_better=False)),
            ("valid_acc", EpochScoring(_valid_accuracy, name="valid_acc",
                                       lower_is_better=False)),
            ("chance_level_check", ChanceLevelCheck()),
            ("print_log", TerminalPrintLog()),      # colour codes only on a terminal
        ]

    # Checked at fit (and by set_params on a fitted model) by ParamsMixin (skood._params),
    # with scikit-learn's validate_parameter_constraints. skorch's parameters (module,
    # optimizer, lr, ...) are skorch's to check.
    _parameter_constraints = {
        "lambda_energy": [Interval(numbers.Real, 0, None, closed="left")],
        "lambda_grad": [Interval(numbers.Real, 0, None, closed="left")],
        "m_in": [Interval(numbers.Real, None, None, closed="neither")],
        "m_out": [Interval(numbers.Real, None, None, closed="neither")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "ood_tpr": [Interval(numbers.Real, 0, 1, closed="neither")],
        "reject_ood": ["boolean"],
        "aux_batch_ratio": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "sampler": [None, StrOptions({"random", "energy"}), HasMethods(["reset", "draw"])],
        "synthesizer": [None, HasMethods(["make_outliers"])],
        "penalty": [StrOptions(set(PENALTIES))],
        "fd_step": [Interval(numbers.Real, 0, None, closed="neither")],
        "penalty_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "amp": [None, StrOptions({name for name in AMP_DTYPES if name is not None})],
        "calibration_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "calibration": [StrOptions({"marginal", "class"})],
        "detector": [StrOptions(set(DETECTORS)), HasMethods(["fit", "score_samples"])],
        "random_state": ["random_state"],
    }

    def get_iterator(self, dataset, training=False):
        """skorch's DataLoader for ``dataset``, with ``batch_size`` (and
        ``iterator_*__batch_size``) of any integer type, e.g. ``np.int64`` from a
        parameter grid, passed on as an ``int`` (torch takes only those).

        Parameters
        ----------
        dataset : torch Dataset
        training : bool, default=False
            Whether to use ``iterator_train`` or ``iterator_valid``.

        Returns
        -------
        iterator
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        batch_size = kwargs.get("batch_size", self.batch_size)
        if isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool):
            batch_size = int(batch_size)
        kwargs["batch_size"] = len(dataset) if batch_size == -1 else batch_size
        return getattr(self, prefix)(dataset, **kwargs)

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's optimizer arguments; the default SGD gets ``momentum=0.9``
        unless ``optimizer__momentum`` is given.

        Parameters
        ----------
        prefix : str
            The optimizer's name, ``"optimizer"``.
        named_parameters : iterable
            The module's ``(name, parameter)`` pairs.

        Returns
        -------
        args : tuple
        kwargs : dict
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix == "optimizer" and self.optimizer is torch.optim.SGD and "momentum" not in kwargs:
            kwargs["momentum"] = DEFAULT_SGD_MOMENTUM
        return args, kwargs

    # ----------------------------------------------------------------- network

    def initialize_module(self):
        """Initialize the module; fill ``n_features`` / ``n_classes`` from the data at fit.

        When the module is a class (or callable) whose signature takes
        ``n_features`` or ``n_classes`` and they are not given as
        ``module__n_features`` / ``module__n_classes``, a fit passes the number
        of input values per sample (the product of a sample's shape: the
        columns of a 2-D ``X``) and of classes, so the network adapts to the
        data (as SciKeras does with its model builder). What was passed is kept
        in ``inferred_module_params_``.

        Returns
        -------
        self
        """
        kwargs = self.get_params_for("module")
        if self._data_shape is not None:       # in fit: from the data
            self.inferred_module_params_ = self._inferred_module_params(self._data_shape, kwargs)
        # outside fit (set_params on a fitted net re-initializes): as the last fit did
        inferred = getattr(self, "inferred_module_params_", {})
        kwargs.update({name: value for name, value in inferred.items() if name not in kwargs})
        if isinstance(self.module, torch.nn.Module) and not kwargs:
            # A module instance (e.g. with trained weights) is a parameter: every fit
            # starts from a copy of it, so fit never changes it and refitting, clone
            # and searches all start from the same weights. (skorch trains the
            # instance itself.)
            self.module_ = copy.deepcopy(self.module)
        else:
            try:
                self.module_ = self.initialized_instance(self.module, kwargs)
            except TypeError as error:
                # outside fit, n_features / n_classes come from no data
                unfilled = sorted(self._inferred_module_params(
                    {"n_features": 1, "n_classes": 1}, kwargs))
                if self._data_shape is not None or not unfilled:
                    raise
                raise TypeError(
                    f"{error}. Outside fit the module's {' and '.join(unfilled)} come from no "
                    f"data: pass {', '.join(f'module__{n}=...' for n in unfilled)}, or call "
                    "fit(X, y, ...), which takes them from the data.") from error
        return self

    @classmethod
    def from_pretrained(cls, pretrained, **params):
        """An estimator whose every fit starts from the weights of a trained classifier.

        The paper's fine-tuning recipe (GReg+ on ImageNet) starts from a
        network trained with cross-entropy and trains it further with the
        outlier terms, usually at a lower learning rate and for a few epochs.

        Parameters
        ----------
        pretrained : torch.nn.Module or fitted skorch net
            A module with trained weights (its forward returns logits, one per
            class), or a fitted :class:`skorch.NeuralNetClassifier` (including
            skood's estimators), whose ``module_`` and ``classes_`` are used.
        **params
            Parameters of the estimator, e.g. ``lr=0.005, max_epochs=3``. Not
            ``module`` or ``module__*`` (the network is ``pretrained``'s).
            ``classes`` defaults to ``pretrained.classes_`` for a fitted net, so
            that the logits' columns keep their classes; pass it for a module
            whose columns are not the sorted labels of ``y``. ``device`` defaults
            to ``pretrained.device`` for a fitted net.

        Returns
        -------
        estimator : unfitted instance of ``cls``
            ``module`` is a copy of the trained network; each ``fit`` (also
            under ``clone`` and ``GridSearchCV``) trains a fresh copy of it.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from skood import GradRegOODClassifier
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> clf = GradRegOODClassifier.from_pretrained(net, lr=0.005, max_epochs=2, verbose=0)
        >>> clf.module is net
        False
        """
        given = sorted(name for name in params if name == "module" or name.startswith("module__"))
        if given:
            raise ValueError(f"from_pretrained takes the network from pretrained; drop {given}.")
        if isinstance(pretrained, torch.nn.Module):
            module = pretrained
        elif isinstance(getattr(pretrained, "module_", None), torch.nn.Module):
            module = pretrained.module_
            if "classes" not in params and hasattr(pretrained, "classes_"):
                params["classes"] = list(pretrained.classes_)
            if "device" not in params and hasattr(pretrained, "device"):
                params["device"] = pretrained.device    # train where it was trained
        else:
            raise TypeError(
                "pretrained must be a torch.nn.Module with trained weights or a fitted skorch "
                f"net (with module_), got {type(pretrained).__name__}.")
        return cls(mark_pretrained(copy.deepcopy(module)), **params)

    def _inferred_module_params(self, data_shape, given):
        if isinstance(self.module, torch.nn.Module):
            return {}
        try:
            accepted = inspect.signature(self.module).parameters
        except (TypeError, ValueError):     # a builtin or C callable: nothing to infer
            return {}
        return {name: value for name, value in data_shape.items()
                if value is not None and name in accepted and name not in given}

    # --------------------------------------------------------------------- fit

    def fit(self, X, y=None, X_aux=None, X_eval=None, **fit_params):
        """Train the network on ID data and auxiliary outliers, then calibrate ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset
            numpy array, torch tensor or pandas DataFrame (numeric columns).
            Rows whose label in ``y`` is -1 are auxiliary outliers. A read-only
            array (e.g. a memmap) is copied once.

            Or a torch ``Dataset`` (skorch's ``Dataset`` and torchvision's
            included) whose items are ``(sample, label)`` pairs, read while
            training, so that its ``transform`` augments every epoch anew (see
            ``docs/images.md``). Its labels are read once, at the start of the
            fit: from ``y`` when given, else from a label attribute
            (``targets``, as torchvision's datasets have, or ``labels``; a
            ``TensorDataset``'s second tensor; skorch's ``y``; through
            ``Subset`` and ``ConcatDataset``) when its first label is the first
            item's, else by reading every item once (sample and transform
            included: one pass over the data, with the DataLoader settings of
            ``iterator_train__*`` such as ``num_workers``) and keeping only the
            labels. A label -1 marks an auxiliary-outlier item, as in an
            array. Samples are cast to float32 when read and are not checked
            for NaN (a non-finite loss stops the fit). The shape of the first
            item's sample is the input shape. A ``synthesizer`` is refused with
            a Dataset ``X`` (it needs the training rows as one array).
        y : array-like of shape (n_samples,)
            Class labels (all strings or all numbers) for ID rows, -1 for
            auxiliary-outlier rows. -1 is the form that travels through
            Pipelines and CV splitters. With a Dataset ``X``: optional, the
            labels of its items (read from them when ``None``).
        X_aux : array-like, torch tensor, DataFrame or torch Dataset, optional
            More auxiliary outliers, shaped like the samples of ``X``; added to
            the -1 rows of ``X``. A Dataset's items are samples, or pairs whose
            first element is the sample (the second is ignored); they are read
            batch by batch as the steps draw them, never all at once, with
            ``iterator_train__num_workers`` worker processes and
            ``iterator_train__pin_memory`` when those are set.
        X_eval : torch Dataset, optional
            Only with a Dataset ``X``: the same samples as ``X``, in the same
            order, without training-time augmentation (e.g. the same images
            with only the normalisation). The rows held out of training, those
            of skorch's validation split (``train_split``) and the calibration
            rows of ``offset_``, are read from it; training reads ``X``. Its
            labels are not read (those of ``X`` apply). Without it the held-out
            rows are read from ``X`` as it is, augmentation included: then
            ``offset_`` is calibrated on augmented images, and the fraction of
            clean ID images that :meth:`predict_ood` accepts can differ from
            ``ood_tpr`` (the guarantee holds for images augmented like the
            calibration rows). ``X_eval`` needs ``train_split=None`` or a
            split into ``Subset`` objects of ``X`` (skorch's ``ValidSplit``, the
            default).
        **fit_params
            Passed on to skorch (module forward and ``train_split``).
            ``sample_weight`` is not supported and refused.

        Returns
        -------
        self

        Raises
        ------
        NonFiniteLossError
            When the loss or the gradients become NaN or inf. If the weights
            from before the failing batch give finite scores on the held-out
            calibration rows, the estimator is fitted with them: labels are
            decoded, ``offset_`` is calibrated, and every method works
            (BatchNorm's running statistics include the failing batch's
            forward). Otherwise (e.g. ``lr=float("nan")``, whose first step
            already makes the weights NaN) it is left unfitted, and the
            error's message says so. When every training loss was finite but
            the trained network gives non-finite scores on the held-out
            calibration rows (e.g. BatchNorm's eval-mode statistics after very
            few steps, or a learning rate too high), the subclass
            :class:`~skood.exceptions.NonFiniteOutputError` is raised and the
            estimator is left unfitted.
        ValueError
            Among the input checks: when a held-out calibration item of a
            Dataset ``X`` has a NaN or infinite sample (named by its index);
            the estimator is then left unfitted.
        """
        reinitialize = not self.warm_start or not self.initialized_
        return self._fit(X, y, X_aux, reinitialize=reinitialize, X_eval=X_eval, **fit_params)

    def partial_fit(self, X, y=None, classes=None, X_aux=None, X_eval=None, **fit_params):
        """Continue training (one call of ``max_epochs`` epochs) without re-initialising.

        ``offset_`` and the calibration scores are calibrated again after each call.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset
            As in :meth:`fit`.
        y : array-like of shape (n_samples,), optional with a Dataset ``X``
            As in :meth:`fit`.
        classes : array-like, optional
            All the classes, as scikit-learn's incremental learners take them:
            on the first call (of an unfitted model) they are the classes, so
            that ``y`` may hold only some of them, and sorted as ``np.unique``
            sorts them; later calls must pass the same ones or none. Defaults
            to the ``classes`` parameter, else to the labels of the first
            call's ``y``.
        X_aux : array-like, torch tensor, DataFrame or torch Dataset, optional
            As in :meth:`fit`.
        X_eval : torch Dataset, optional
            As in :meth:`fit`.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self
        """
        return self._fit(X, y, X_aux, reinitialize=not self.initialized_, classes=classes,
                         X_eval=X_eval, **fit_params)

    def _fit(self, X, y, X_aux, *, reinitialize, classes=None, X_eval=None, **fit_params):
        self._check_hyperparameters()
        fitted_before = hasattr(self, "offset_") and not reinitialize
        if (classes is None and self.classes is None and not reinitialize
                and hasattr(self, "classes_inferred_")):
            # A model that set_params left unfitted keeps its network, whose outputs
            # are these classes: a partial_fit on a batch of some of them goes on.
            classes = self.classes_
        data = fit_input(self, X, y, X_aux, X_eval, fit_params, fitted_before=fitted_before,
                         classes=classes)
        epochs = fit_params.get("epochs", self.max_epochs)
        if epochs is not None and epochs <= 0:
            warn_at_caller(
                f"max_epochs={epochs}: the network is not trained; offset_ is calibrated on "
                "its current (for a new fit, initial) weights. Set max_epochs to at least 1.")
        try:
            self._train_and_calibrate(data, reinitialize)
        except NonFiniteLossError:
            raise                           # the state it leaves is documented in fit
        except BaseException as error:
            self._drop_fitted_state(
                f"the last fit stopped with {type(error).__name__} after it had begun to "
                "change the model")
            raise
        return self

    def _train_and_calibrate(self, data, reinitialize):
        """Build the network (on a new fit), train it with skorch, calibrate ``offset_``."""
        if reinitialize:
            self._drop_fitted_state(None)
            warn_unseeded_instance(self)
        with self._seeded(data.seed):
            if reinitialize:
                self._data_shape = {"n_features": int(np.prod(data.X_sample.shape[1:])),
                                    "n_classes": len(data.classes)}
                try:
                    self.initialize()
                finally:
                    del self._data_shape
            check_module_outputs(self, data.X_sample, len(data.classes),
                                 data.y_train[:len(data.X_sample)])
            with self._fit_state_for(data.outliers, data.seed) as state:
                state.split = data.split
                try:
                    super().partial_fit(data.X_train, data.y_train, **data.fit_params)
                except NonFiniteLossError as error:
                    diverged = error
                else:
                    diverged = None
                self.classes_inferred_ = data.classes  # skorch inferred the encoded ones
                calibration = (state.calibration_dataset if data.X_calibration is None
                               else data.X_calibration)
                # kept so that set_params(detector=...) refits the detector alone
                self._keep_detector_rows(state.train_dataset, calibration, data.seed)
                fitted_detector = True
                try:
                    self._fit_detector(state.train_dataset)
                except ValueError:
                    if diverged is None:
                        raise
                    fitted_detector = False     # the diverged weights' outputs are not finite
                logits, features = self._ood_outputs(calibration)
        if fitted_detector:
            try:    # Fused: calibrated on half the rows, offset_ on the other half
                logits, features, calibration = self._calibrate_detector(
                    logits, features, calibration, data.seed, strict=diverged is None)
            except ValueError:
                if diverged is None:
                    raise
                fitted_detector = False
        if diverged is None:
            scores = self._scores(logits, features)     # once: a detector may be costly
            try:
                check_held_out_scores(self, scores, calibration)
            except NonFiniteLossError:
                self._drop_fitted_state("the last fit's network gives non-finite scores")
                raise
            self._calibrate(logits, features, scores)
        elif (fitted_detector and torch.isfinite(logits).all()
              and np.isfinite(self._scores(logits, features)).all()):
            # The model stays usable with the last finite weights (see fit).
            self._calibrate(logits, features)
            raise diverged
        else:
            self._drop_fitted_state(
                "the last fit diverged (NonFiniteLossError) and its weights give non-finite "
                "scores")
            raise NonFiniteLossError(
                f"{diverged} Those weights give non-finite scores on the calibration rows, so "
                "the estimator is left unfitted; fit again with a lower lr.") from None

    # ------------------------------------------------------------- calibration

    def _calibrate(self, logits, features=None, scores=None):
        """The sorted calibration scores and the threshold(s), from held-out ID outputs
        (``scores``: their scores, when already computed)."""
        if scores is None:
            scores = self._scores(logits, features)
        order = np.argsort(scores, kind="stable")
        self.calibration_scores_ = scores[order]
        self.calibration_classes_ = logits.argmax(dim=1).cpu().numpy()[order].astype(np.int32)
        self._set_thresholds()

    def _set_thresholds(self):
        """``offset_`` (and ``class_offsets_`` with ``calibration="class"``) from the stored
        calibration scores, by the conformal rule at ``ood_tpr``."""
        vars(self).pop("class_offsets_", None)
        self.offset_ = conformal_threshold(self.calibration_scores_, self.ood_tpr)
        if self.calibration == "class":
            if not hasattr(self, "calibration_classes_"):
                self._drop_fitted_state(
                    "calibration='class' needs calibration_classes_, which this model (saved "
                    "by an older version) lacks")
                return
            self.class_offsets_ = class_conditional_thresholds(
                self.calibration_scores_, self.calibration_classes_, len(self.classes_),
                self.ood_tpr, small_class="marginal")
        self._unfitted_reason = None

    def _drop_fitted_state(self, reason):
        """Make the model unfitted: drop what ties its scores to thresholds, say why."""
        for name in (*CALIBRATION_ATTRIBUTES, "detector_", ROWS_ATTRIBUTE):
            vars(self).pop(name, None)
        self._unfitted_reason = reason

    def __sklearn_is_fitted__(self):
        # Fitted means calibrated: an initialised network alone has no threshold.
        return super().__sklearn_is_fitted__() and hasattr(self, "offset_")

    # ------------------------------------------------------------- persistence

    def __getstate__(self):
        # skorch maps to the CPU at load (on a machine without CUDA) only the
        # attributes listed in cuda_dependent_attributes_ (module_, criterion_,
        # optimizer_, ...). A module *instance* as the ``module`` parameter (the copy
        # from_pretrained keeps, on the source's device) must travel the same way;
        # the prefix "module" also takes module__* (plain values, loaded as they are).
        if not isinstance(self.module, torch.nn.Module):
            return super().__getstate__()
        own = "cuda_dependent_attributes_" in vars(self)
        listed = self.cuda_dependent_attributes_
        self.cuda_dependent_attributes_ = [*listed, "module"]
        try:
            state = super().__getstate__()
        finally:
            if own:
                self.cuda_dependent_attributes_ = listed
            else:
                del self.cuda_dependent_attributes_
        if own:
            state["cuda_dependent_attributes_"] = listed
        else:
            state.pop("cuda_dependent_attributes_")
        return state

    def save_params(self, *args, f_calibration=None, f_detector=None, **kwargs):
        """skorch's ``save_params``; ``f_calibration`` (and ``f_detector``) also save the
        calibration (and the fitted detector).

        With ``f_calibration``, what the OOD decisions need beside the weights
        is written as JSON (plain data: loading it runs no code): the classes,
        the sorted calibration scores and their predicted classes, the
        temperature they were scored at, and the shape and feature names of
        the input. :meth:`load_params` with the same ``f_calibration`` makes a
        rebuilt estimator fitted again. With a ``detector`` other than
        ``"energy"``, the calibration scores belong to the fitted
        ``detector_``, which ``f_detector`` saves beside them: its class,
        parameters and fitted attributes as JSON, its arrays in the same numpy
        ``.npz`` archive (loaded without pickle, so loading runs no code).
        Detectors of :mod:`skood.detectors` only; save a model with a detector
        of your own with joblib.

        Parameters
        ----------
        *args
            skorch's positional parameters (``f_params``, ...).
        f_calibration : str, path or text file, optional
            Where to write the calibration.
        f_detector : str, path or binary file, optional
            Where to write the fitted detector (an ``.npz`` archive); needed
            with ``f_calibration`` exactly when ``detector`` is not
            ``"energy"``.
        **kwargs
            skorch's parameters: ``f_params``, ``f_optimizer``,
            ``f_criterion``, ``f_history``, ``use_safetensors``.

        See Also
        --------
        load_params : the way back; ``docs/persistence.md`` shows both.
        """
        if f_calibration is not None:
            self._check_calibrated("save_params(f_calibration=...)")
        self._check_detector_files("save_params", f_calibration, f_detector)
        super().save_params(*args, **kwargs)
        if f_calibration is not None:
            write_calibration(f_calibration, calibration_record(self, self._detector_spec()))
            self._write_detector_file(f_detector)

    def load_params(self, *args, f_calibration=None, f_detector=None, **kwargs):
        """skorch's ``load_params``; ``f_calibration`` (and ``f_detector``) also restore the
        calibration (and the fitted detector).

        With ``f_calibration`` (written by :meth:`save_params`), the estimator
        gets back ``classes_``, ``calibration_scores_``,
        ``calibration_classes_``, ``input_shape_``, ``n_features_in_`` and
        ``feature_names_in_``, and ``offset_`` (and ``class_offsets_``) are
        recomputed from the scores at this estimator's ``ood_tpr`` and
        ``calibration``: a rebuilt estimator is then fitted, with the saved
        model's scores, thresholds and input checks. Its ``temperature`` must
        be the saved one, since the scores depend on it, and so must its
        ``detector`` (class and parameters): with a detector other than
        ``"energy"``, ``f_detector`` gives back ``detector_``, bit for bit.

        Loading weights (``f_params`` or ``checkpoint``) into a fitted
        estimator without ``f_calibration`` leaves it unfitted: its old
        threshold does not belong to the new weights. For the same reason
        ``f_calibration`` is refused without ``f_params`` or ``checkpoint`` in
        the same call.

        Parameters
        ----------
        *args
            skorch's positional parameters (``f_params``, ...).
        f_calibration : str, path or text file, optional
            A calibration written by ``save_params(f_calibration=...)``, loaded
            together with the weights saved with it.
        f_detector : str, path or binary file, optional
            The detector written by ``save_params(f_detector=...)`` with that
            calibration; needed exactly when ``detector`` is not ``"energy"``.
        **kwargs
            skorch's parameters: ``f_params``, ``f_optimizer``,
            ``f_criterion``, ``f_history``, ``checkpoint``, ``use_safetensors``.

        See Also
        --------
        save_params : writes the files; ``docs/persistence.md`` shows both.
        """
        state = None
        loads_weights = bool(args) or any(kwargs.get(name) is not None
                                          for name in ("f_params", "checkpoint"))
        self._check_detector_files("load_params", f_calibration, f_detector)
        if f_calibration is not None:
            state = read_calibration(f_calibration)
            detector = self._read_detector_file(state.pop("detector"), f_detector)
            if not loads_weights:
                raise ValueError(
                    "load_params(f_calibration=...) needs the weights saved with that "
                    "calibration in the same call, since its thresholds belong to them: "
                    "load_params(f_params='weights.pt', f_calibration='calibration.json') "
                    "(or checkpoint=...). Nothing was loaded.")
            check_calibration_state(self, state)
            check_output_width(self, state)
        super().load_params(*args, **kwargs)
        if state is not None:
            self.classes_inferred_ = state.pop("classes_")
            for name in INPUT_ATTRIBUTES:
                vars(self).pop(name, None)
            self._drop_fitted_state(None)       # an earlier fit's detector_ and rows
            for name, value in state.items():
                if name != "temperature":
                    setattr(self, name, value)
            if detector is not None:
                self.detector_ = detector
            self._set_thresholds()
        elif loads_weights and self._fit_state is None and hasattr(self, "offset_"):
            self._drop_fitted_state(
                "load_params replaced the weights without f_calibration=..., so offset_ and "
                "the calibration scores no longer apply")

    # ---------------------------------------------------------------- inference

    def _check_inference_input(self, X):
        if is_dataset(X):
            if self._fit_state is not None:
                return X  # in fit: its own held-out rows (skorch's split, the calibration rows)
            check_dataset(self, X, reset=False)
            # (sample, label) pairs or bare samples, read as float32 (as fit reads them)
            return LabelledRows(X, np.arange(len(X)), shape=self.input_shape_)
        return check_features(self, X, reset=False)

    def _logits(self, X):
        """Logits of all rows of X, gathered on the device and copied to the host once."""
        self.check_is_fitted()
        X = self._check_inference_input(X)
        chunks = []
        with torch.no_grad():
            for output in self.forward_iter(X, training=False, device=None):
                chunks.append(first_output(output))
        logits = torch.cat(chunks) if chunks else torch.empty(0, len(self.classes_))
        if self._fit_state is None and is_dataset(X) and not torch.isfinite(logits).all():
            # arrays are checked for NaN up front; a Dataset's items only when they give
            # non-finite logits (reading them again costs nothing otherwise)
            rows = torch.nonzero(~torch.isfinite(logits).all(dim=1)).flatten().tolist()
            check_finite_items(X, rows, "to predict", "then predict again")
        return logits

    def _predict_index(self, X):
        return self._logits(X).argmax(dim=1).cpu().numpy()

    def _check_calibrated(self, method):
        if not hasattr(self, "offset_"):
            if self._unfitted_reason is not None:
                raise NotFittedError(
                    f"This {type(self).__name__} instance is not fitted: "
                    f"{self._unfitted_reason}. Call fit(X, y, X_aux=...) (or partial_fit) "
                    f"before {method}.")
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call "
                f"fit(X, y, X_aux=...) before {method}.")

    def _ood_decision(self, logits, features=None):
        """``score - threshold`` per row, float32: ``>= 0`` means accepted as ID. The
        threshold is ``offset_``, or the predicted class's with ``calibration="class"``."""
        scores = self._scores(logits, features)
        if hasattr(self, "class_offsets_"):
            predicted = logits.argmax(dim=1).cpu().numpy()
            return scores - np.asarray(self.class_offsets_, dtype=np.float32)[predicted]
        return scores - np.float32(self.offset_)

    def score_samples(self, X):
        """The OOD score of each sample: higher means more in-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples,), float32
            With ``detector="energy"``: minus the energy,
            ``temperature * logsumexp(logits / temperature)``; otherwise the
            fitted ``detector_``'s scores.

        Raises
        ------
        ValueError
            When ``X`` has a NaN or infinite value (for a Dataset ``X``: an item
            whose sample is not finite and gives non-finite logits, named by
            its index). Every method that takes ``X`` does the same.
        """
        self._check_calibrated("score_samples")
        return self._scores(*self._ood_outputs(X))

    def decision_function(self, X):
        """Class scores, as every scikit-learn classifier returns them.

        For OOD decisions use :meth:`ood_decision_function` (or
        :meth:`score_samples`); scikit-learn's scorers (``"roc_auc"``,
        ``"average_precision"``) and ``CalibratedClassifierCV`` read this method
        as class scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes), float32
            With two classes, the logit margin ``logit[classes_[1]] -
            logit[classes_[0]]`` (larger = ``classes_[1]``); otherwise the
            logits, columns in the order of ``classes_``.
        """
        self._check_calibrated("decision_function")
        logits = self._logits(X).float().cpu().numpy()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def ood_decision_function(self, X):
        """``score_samples(X) - offset_``: ``>= 0`` means accepted as in-distribution.

        ``offset_`` was set at fit on held-out ID rows (the validation split, or
        a held-out ``calibration_fraction`` of the ID rows when
        ``train_split=None``) by the conformal rule, so that new ID samples are
        accepted with probability at least ``ood_tpr`` (see ``offset_``). With
        ``calibration="class"`` the threshold is that of the sample's predicted
        class (``class_offsets_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples,), float32
        """
        self._check_calibrated("ood_decision_function")
        return self._ood_decision(*self._ood_outputs(X))

    def predict_ood(self, X, fdr=None):
        """+1 for samples accepted as in-distribution, -1 for out-of-distribution ones.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset
        fdr : float in (0, 1), optional
            Without it, each sample is judged alone: -1 where
            :meth:`ood_decision_function` is negative (ID samples accepted with
            probability at least ``ood_tpr``). With ``fdr=q``, the batch ``X``
            is judged together: -1 for the Benjamini-Hochberg selection at
            level ``q`` on :meth:`ood_pvalues`, so that the expected fraction
            of ID samples among those flagged is at most ``q`` when the ID
            samples of the batch are exchangeable with the calibration rows
            (Bates et al., "Testing for outliers with conformal p-values",
            Annals of Statistics, 2023; proved for ``calibration="marginal"``).

        Returns
        -------
        ndarray of shape (n_samples,), int
        """
        self._check_calibrated("predict_ood")
        if fdr is None:
            return np.where(self._ood_decision(*self._ood_outputs(X)) >= 0, 1, -1)
        flagged = benjamini_hochberg(self.ood_pvalues(X), fdr)
        return np.where(flagged, -1, 1)

    def ood_pvalues(self, X):
        """Conformal p-values: small means unlike the in-distribution data.

        ``p(x) = (1 + #{calibration scores <= score(x)}) / (n + 1)`` with the
        ``n`` held-out calibration scores (``calibration_scores_``); calibration
        scores equal to ``score(x)`` count (ties make p larger, never smaller).
        With ``calibration="class"``, only the calibration rows of the sample's
        predicted class count, except for a class with too few rows for
        ``ood_tpr`` (fewer than ``ceil(1 / (1 - ood_tpr)) - 1``), whose samples
        get the p-values against all calibration rows, as they get ``offset_``
        as threshold: ``p(x) > 1 - ood_tpr`` exactly when the sample is
        accepted, for every class. For a new ID sample exchangeable with the
        calibration rows, ``P(p(x) <= a) <= a`` for every ``a``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples,), float64, in ``[1 / (n + 1), 1]``
        """
        self._check_calibrated("ood_pvalues")
        if not hasattr(self, "calibration_scores_"):
            raise NotFittedError(
                "ood_pvalues needs calibration_scores_, which fit sets; an estimator rebuilt "
                "from saved weights gets them with load_params(f_params=..., "
                "f_calibration=...).")
        logits, features = self._ood_outputs(X)
        scores = self._scores(logits, features)
        if hasattr(self, "class_offsets_"):
            predicted = logits.argmax(dim=1).cpu().numpy()
            return class_conditional_pvalues(self.calibration_scores_, self.calibration_classes_,
                                             scores, predicted, len(self.classes_),
                                             tpr=self.ood_tpr)
        return conformal_pvalues(self.calibration_scores_, scores)

    def predict_proba(self, X):
        """Class probabilities over the ID classes (softmax of the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples, n_classes), columns in the order of ``classes_``
        """
        self._check_calibrated("predict_proba")
        nonlinearity = self._get_predict_nonlinearity()
        return nonlinearity(self._logits(X)).float().cpu().numpy()

    def predict(self, X):
        """Class labels from ``classes_``; with ``reject_ood=True``, -1 where ``predict_ood`` is -1.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset

        Returns
        -------
        ndarray of shape (n_samples,)
            The dtype of ``classes_``; with ``reject_ood=True``, one that holds -1:
            unsigned integer classes become the narrowest signed integer dtype that
            holds them and -1 (int16 for uint8, int64 for uint32 and uint64; object
            for uint64 classes beyond the int64 range),
            strings and bools become ``object``.
        """
        self._check_calibrated("predict")
        if not self.reject_ood:
            return self.classes_[self._logits(X).argmax(dim=1).cpu().numpy()]
        logits, features = self._ood_outputs(X)
        labels = self.classes_[logits.argmax(dim=1).cpu().numpy()]
        rejected = self._ood_decision(logits, features) < 0
        if labels.dtype.kind == "u":
            signed = np.promote_types(labels.dtype, np.int8)       # uint64: float64
            if signed.kind != "i":
                signed = (np.int64 if self.classes_.max() <= np.iinfo(np.int64).max
                          else object)
            labels = labels.astype(signed)
        elif labels.dtype.kind not in "if":
            labels = labels.astype(object)
        labels[rejected] = OUTLIER_LABEL
        return labels

    def score(self, X, y=None, sample_weight=None):
        """Accuracy of :meth:`predict` on the rows of ``X`` whose label is one of ``classes_``.

        With ``reject_ood=True`` a rejected ID row counts as an error.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset
        y : array-like of shape (n_samples,)
            Class labels; rows labelled -1 or with a class not in ``classes_``
            are left out (see :func:`skood.metrics.id_accuracy`). With a
            Dataset ``X`` of ``(sample, label)`` items it may be left out: the
            labels are read as :meth:`fit` reads them.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        if y is None:
            if not is_dataset(X):
                raise ValueError("score needs y, the class labels of the rows of X.")
            y = dataset_labels(X, None, loader_params(self))[0]
        return id_accuracy(self, X, y, sample_weight=sample_weight)
