"""How a fitted estimator turns its network's outputs into OOD scores.

The estimator's ``detector`` parameter chooses the score. The default,
``"energy"``, is minus the energy of the logits at the estimator's
``temperature``, computed exactly as it always was (float32, no features
computed). Any other detector of :mod:`skood.detectors` (or an object with
``fit``, ``score_samples`` and ``needs``) is fitted after training, as
``detector_``, on the features and logits of the rows the network trained on,
read by one forward pass per batch that captures both; its float64 scores are
stored and compared as float32, as the energy's are.
"""
import numpy as np
import torch
from sklearn.base import clone
from skorch.dataset import unpack_data

from .detectors import capture_features, last_linear, make_detector
from .losses import energy

__all__ = ["DEFAULT_DETECTOR", "ScoringMixin"]

DEFAULT_DETECTOR = "energy"


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
        if callable(getattr(detector, "calibrate", None)):
            raise ValueError(
                f"detector={self.detector!r}: a detector that is calibrated itself (Fused) "
                "cannot be the estimator's detector, whose calibration rows set offset_ and the "
                "p-values; fit Fused on skood.detectors.extract_features(clf.module_, X) as "
                "docs/detectors.md shows, or pass one of its members.")

    def _check_calibration_file(self, method):
        """Refuse a calibration file for a fitted detector, whose state is no JSON."""
        if not self._uses_energy():
            raise ValueError(
                f"{method} writes and reads the energy score's calibration only; with "
                f"detector={self.detector!r} the fitted detector_ belongs to it, and its state "
                "(stored features, class means, ...) is not plain data. Save the fitted model "
                "with joblib or pickle instead (docs/persistence.md).")

    def _fit_detector(self, dataset):
        """Fit a clone of ``detector`` on the features, logits and labels of ``dataset``,
        the rows the network trained on; the default energy fits nothing."""
        vars(self).pop("detector_", None)
        if self._uses_energy():
            return
        detector = clone(make_detector(self.detector))
        logits, features, y = self._forward_outputs(dataset, "features" in detector.needs,
                                                    labels=detector.needs_labels)
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
            return self._logits(X), None
        self.check_is_fitted()
        logits, features, _ = self._forward_outputs(self._check_inference_input(X), True)
        return logits, features

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
