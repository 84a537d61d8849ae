"""How a fitted estimator turns its network's outputs into OOD scores.

The estimator's ``detector`` parameter chooses the score. The default,
``"energy"``, is minus the energy of the logits at the estimator's
``temperature``, computed exactly as it always was (float32, no features
computed). Any other detector of :mod:`skood.detectors` (or an object with
``fit``, ``score_samples`` and ``needs``) is fitted after training, as
``detector_``, on the features and logits of the rows the network trained on,
read by one forward pass per batch that captures both; its float64 scores are
stored and compared as float32, as the energy's are.

``set_params(detector=...)`` on a fitted model fits the new detector and
recalibrates without training: the fit keeps, in memory only
(:class:`DetectorRows`), which rows the detector and the calibration read. A
detector calibrated itself (``Fused``) gets half of the calibration rows
(``_calibrate_detector``). ``save_params`` and ``load_params`` check and
write the fitted detector's file (:mod:`skood._detector_io`) through the
``_*_detector_file`` methods here.
"""
import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import clone
# the function skood's detectors check their parameters with (a private module: see
# skood/detectors/_base.py)
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch.dataset import unpack_data

from ._calibration_io import check_detector_record
from ._detector_io import check_writable, detector_spec, read_detector, write_detector
from ._network import check_held_out_scores
from ._seeds import calibration_halves
from ._training import FitState
from .detectors import capture_features, last_linear, make_detector
from .exceptions import warn_at_caller
from .losses import energy

__all__ = ["DEFAULT_DETECTOR", "DetectorRows", "ScoringMixin"]

DEFAULT_DETECTOR = "energy"
# The fitted model's attribute holding its DetectorRows; never pickled.
ROWS_ATTRIBUTE = "_detector_rows"


@dataclass
class DetectorRows:
    """What a fitted model keeps so that a new detector can be fitted without training.

    References to the rows, not their network outputs: a fit with the default energy
    computes no features, and keeping every candidate detector's inputs (features of
    every training row) would cost a forward pass at each fit and memory of the
    features' size. References cost nothing: they are the arrays (or Datasets) the fit
    made or was given. They live in memory only (``__getstate__`` leaves them out), so
    a pickled, joblib or ``save_params`` model is not enlarged by them.

    Attributes
    ----------
    train : torch Dataset
        The rows the network trained on (skorch's training split) in the last fit or
        ``partial_fit`` call: the detector's rows.
    calibration : ndarray or torch Dataset
        That call's held-out calibration rows.
    seed : int
        That fit's seed (see :mod:`skood._seeds`).
    rng_states : dict
        torch's random states (``"cpu"``, and the training device's when it is a CUDA
        device) at the end of training, where the fit began reading these rows: a
        Dataset whose transform draws from torch's global generator is read again with
        the same draws.
    """

    train: object
    calibration: object
    seed: int
    rng_states: dict

    @classmethod
    def capture(cls, train, calibration, seed, device):
        """The rows of the fit in progress, with torch's random states now."""
        states = {"cpu": torch.get_rng_state()}
        if device.type == "cuda" and torch.cuda.is_available():
            states[device] = torch.cuda.get_rng_state(device)
        return cls(train, calibration, seed, states)

    @contextlib.contextmanager
    def replay(self):
        """torch's random states as captured, within; the caller's are restored after."""
        devices = [device for device in self.rng_states if device != "cpu"]
        with torch.random.fork_rng(devices=[device.index or 0 for device in devices]):
            torch.set_rng_state(self.rng_states["cpu"])
            for device in devices:
                torch.cuda.set_rng_state(self.rng_states[device], device)
            yield



class ScoringMixin:
    """The ``detector`` of :class:`skood.GradRegOODClassifier`: its checks, fit and scores.

    A mixin placed before :class:`skood._params.ParamsMixin` among the bases; it
    defines no parameters. It relies on the estimator's ``module_``,
    ``temperature``, ``get_iterator``, ``evaluation_step`` and ``_logits``.
    """

    def _uses_energy(self):
        """Whether the score is the built-in energy (the default: no detector to fit)."""
        return isinstance(self.detector, str) and self.detector == DEFAULT_DETECTOR

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        if self._uses_energy():
            return
        detector = make_detector(self.detector)   # refuses classes and non-detectors
        constraints = getattr(detector, "_parameter_constraints", None)
        if constraints and hasattr(detector, "get_params"):
            # its own parameters, checked again at its fit: refused before training here
            validate_parameter_constraints(constraints, detector.get_params(deep=False),
                                           caller_name=type(detector).__name__)

    def _check_detector_files(self, method, f_calibration, f_detector):
        """Refuse ``f_detector`` without ``f_calibration``, for the energy, or missing
        where the calibration scores belong to a fitted detector; at save, refuse a
        detector that is not plain data before any file is written."""
        if f_detector is not None and f_calibration is None:
            raise ValueError(
                f"{method}: f_detector goes with f_calibration, since the calibration scores "
                "belong to the detector; pass both.")
        if f_calibration is None:
            return
        if self._uses_energy() and f_detector is not None:
            raise ValueError(
                f"{method}: detector='energy' fits no detector, so there is no f_detector "
                "file; leave it out.")
        if not self._uses_energy() and f_detector is None:
            raise ValueError(
                f"{method}: with detector={self.detector!r} the calibration scores belong to "
                "the fitted detector_; pass f_detector='detector.npz' too, the file of its "
                "fitted state (numpy arrays and JSON, loaded without pickle).")
        if method == "save_params" and f_detector is not None:
            check_writable(self.detector_)

    def _detector_spec(self):
        """The class and parameters of ``detector`` (None for the energy), as recorded in
        the calibration file."""
        return None if self._uses_energy() else detector_spec(make_detector(self.detector))

    def _write_detector_file(self, f_detector):
        if f_detector is not None:
            write_detector(f_detector, self.detector_)

    def _read_detector_file(self, recorded, f_detector):
        """The fitted detector of ``f_detector`` (None without one), refused unless the
        calibration file's ``recorded`` detector and the file's are this estimator's
        ``detector`` (same class and parameters)."""
        check_detector_record(recorded, self._detector_spec(), self.detector)
        if f_detector is None:
            return None
        detector = read_detector(f_detector)
        if detector_spec(detector) != self._detector_spec():
            raise ValueError(
                f"The detector file holds {detector!r}, but this estimator has "
                f"detector={self.detector!r}; set detector={detector!r} before load_params "
                "(its scores and calibration belong to that detector). Nothing was loaded.")
        return detector

    def __getstate__(self):
        # The rows a new detector would read stay in memory: a saved model does not
        # carry the training data (see DetectorRows).
        state = super().__getstate__()
        state.pop(ROWS_ATTRIBUTE, None)
        return state

    def _keep_detector_rows(self, train, calibration, seed):
        """Record, in the fit in progress, which rows the detector and the calibration
        read (before they are read: torch's random states are captured now)."""
        rows = DetectorRows.capture(train, calibration, seed, self._training_device)
        setattr(self, ROWS_ATTRIBUTE, rows)
        return rows

    def _refit_detector(self, shown):
        """``set_params(detector=...)`` on a fitted model: fit the new detector on the last
        fit's training rows and recalibrate on its calibration rows, reading them as that
        fit did, so that the model equals a fit with this detector; the network is not
        trained. A model without the rows (loaded or copied) is left unfitted, with a
        warning; ``shown`` names the call."""
        rows = getattr(self, ROWS_ATTRIBUTE, None)
        if rows is None:
            reason = (f"set_params({shown}) needs the rows of the last fit to fit the new "
                      "detector, and a model loaded from disk (pickle, joblib, load_params) "
                      "or copied does not keep them, so offset_ and the calibration scores "
                      "no longer apply")
            warn_at_caller(f"set_params({shown}) left the model unfitted: it was loaded from "
                           "disk or copied, and such a model does not keep its training rows "
                           "to fit the new detector on. Call fit (or partial_fit) again.")
            self._drop_fitted_state(reason)
            return
        with rows.replay(), self._reading_held_out_rows():
            self._fit_detector(rows.train)
            logits, features = self._ood_outputs(rows.calibration)
        logits, features, calibration = self._calibrate_detector(
            logits, features, rows.calibration, rows.seed)
        scores = self._scores(logits, features)
        check_held_out_scores(self, scores, calibration)
        self._calibrate(logits, features, scores)

    def _calibrate_detector(self, logits, features, calibration, seed, strict=True):
        """Calibrate a detector that is calibrated itself (``Fused``) on half of the
        calibration rows; return the outputs and rows of the other half, on which
        ``offset_`` and the p-values are calibrated. Other detectors: all rows, unchanged.

        Given the first half, the fused score is a fixed function of a row, so the second
        half and new in-distribution rows are exchangeable under it and the conformal
        rules keep their guarantees; calibrating both on the same rows would not. The
        halves are drawn under the fit's ``seed`` (:func:`skood._seeds.calibration_halves`).
        Non-finite outputs are refused as non-finite scores are (``strict``), else with a
        ``ValueError``."""
        detector = getattr(self, "detector_", None)
        if detector is None or not callable(getattr(detector, "calibrate", None)):
            return logits, features, calibration
        finite = torch.isfinite(logits).all(dim=1)
        if features is not None:
            finite &= torch.isfinite(features).all(dim=1)
        if not bool(finite.all()):
            if strict:
                check_held_out_scores(self, np.where(finite.numpy(), 0.0, np.nan), calibration)
            raise ValueError("The calibration rows' network outputs are not finite.")
        if len(logits) < 2:
            raise ValueError(
                f"detector={self.detector!r} is calibrated on half of the calibration rows and "
                f"offset_ on the other half, which needs at least 2 rows; got {len(logits)}. "
                "Hold out more rows (train_split, or calibration_fraction with "
                "train_split=None).")
        first, second = calibration_halves(len(logits), seed)
        detector.calibrate(None if features is None else features[first], logits[first])
        rows = (calibration[second] if isinstance(calibration, np.ndarray)
                else torch.utils.data.Subset(calibration, second.tolist()))
        return logits[second], None if features is None else features[second], rows

    @contextlib.contextmanager
    def _reading_held_out_rows(self):
        """Within, the estimator reads its own held-out rows as its fit does (they are
        Subsets of the fit's datasets, not user input to check)."""
        self._fit_state = FitState()
        try:
            yield
        finally:
            del self._fit_state

    def _fit_detector(self, dataset):
        """Fit a clone of ``detector`` on the features, logits and labels of ``dataset``,
        the rows the network trained on; the default energy fits nothing."""
        vars(self).pop("detector_", None)
        if self._uses_energy():
            return
        detector = clone(make_detector(self.detector))
        # with the features, the labels too (a few ints): one read of the rows serves
        # every feature detector of a search (see _caching_outputs)
        features = "features" in detector.needs
        asked = (features, features or detector.needs_labels)
        logits, features, y = self._cached(
            (dataset, *asked), lambda: self._forward_outputs(dataset, *asked))
        y = y if detector.needs_labels else None
        last_layer = last_linear(self.module_) if detector.needs_last_layer else None
        detector.fit(features, logits, y, last_layer=last_layer)
        self.detector_ = detector

    def _forward_outputs(self, dataset, features, labels=False):
        """Logits, features (or None) and labels (or None) of every row of ``dataset``,
        from one forward per batch on the training device; copied to the host."""
        chunks, feature_chunks, label_chunks = [], [], []
        hook = capture_features(self.module_) if features else _no_capture()
        with torch.no_grad(), hook as captured:
            for batch in self.get_iterator(self.get_dataset(dataset), training=False):
                output = self.evaluation_step(batch, training=False)
                output = output[0] if isinstance(output, (tuple, list)) else output
                chunks.append(output.detach().cpu())
                if features:
                    feature_chunks.append(captured.pop().cpu())
                if labels:
                    label_chunks.append(torch.as_tensor(unpack_data(batch)[1]).cpu())
        logits = torch.cat(chunks) if chunks else torch.empty(0, len(self.classes_))
        return (logits, torch.cat(feature_chunks) if features else None,
                torch.cat(label_chunks).numpy() if labels else None)

    def _ood_outputs(self, X):
        """What the scores of ``X`` need: ``(logits, features)``, features None unless the
        fitted detector reads them (and always None for the default energy)."""
        detector = getattr(self, "detector_", None)
        if detector is None or "features" not in detector.needs:
            return self._cached((X, False), lambda: (self._logits(X), None))
        self.check_is_fitted()
        return self._cached((X, True), lambda: self._forward_outputs(
            self._check_inference_input(X), True)[:2])

    # Set only within _caching_outputs: the network's outputs by input object.
    _output_cache = None

    @contextlib.contextmanager
    def _caching_outputs(self):
        """Within, the network's outputs for one input object (``X`` to score, the rows a
        detector is fitted on) are computed once and reused: for scoring many detectors
        on one trained network (:class:`skood.model_selection.DetectorSearchCV`). The
        values are those a recomputation gives (the network must not change within)."""
        self._output_cache = {}
        try:
            yield
        finally:
            del self._output_cache

    def _cached(self, key, compute):
        """``compute()``, or its value for the same ``key`` (input object and what was
        asked) within :meth:`_caching_outputs`."""
        if self._output_cache is None:
            return compute()
        source, *asked = key
        key = (id(source), *asked)
        if key not in self._output_cache:
            # the input is kept with its outputs, so that its id is not reused
            self._output_cache[key] = (source, compute())
        return self._output_cache[key][1]

    def _scores(self, logits, features=None):
        """``score_samples``' values, float32 on the host: minus the energy at
        ``temperature`` by default, else the fitted detector's scores."""
        detector = getattr(self, "detector_", None)
        if detector is None:
            return (-energy(logits, self.temperature)).float().cpu().numpy()
        return np.asarray(detector.score_samples(features, logits), dtype=np.float32)


class _no_capture:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
