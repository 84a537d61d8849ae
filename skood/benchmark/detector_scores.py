"""One trained network, many scores: the run's detectors fitted and applied to one network.

The benchmark trains each method once per run and scores its network with every detector
of the run (``skood benchmark --detectors``). Each detector is fitted, with the public
:mod:`skood.detectors` API, on the features and logits of the rows **the network trained
on** -- skorch's training split of the fit, never its validation rows (the estimator's
calibration rows), the test rows or the OOD sets -- as the estimator's own ``detector``
parameter fits one. :class:`~skood.detectors.Fused`, which is calibrated itself, is then
calibrated on the estimator's calibration rows: held-out in-distribution rows that no
detector was fitted on and that are not test rows.

:class:`HeldOutRows` is the skorch callback that keeps a fit's two parts;
:func:`fit_detectors` fits the detectors on them and :func:`score_rows` scores new rows
with all of them, from one forward pass per batch. Scores are higher for
in-distribution rows.
"""
import time

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ..detectors import capture_features, last_linear, make_detector

__all__ = ["HeldOutRows", "fit_detectors", "network_outputs", "score_rows"]


class HeldOutRows(Callback):
    """A skorch callback that keeps the two parts of the fit's split.

    skorch hands every callback the datasets of its ``train_split`` at the start of each
    epoch; this one keeps those of the first epoch of the last fit. For
    :class:`skood.GradRegOODClassifier` with its default ``train_split``, the held-out part
    is the rows ``offset_`` is calibrated on.

    Attributes
    ----------
    train_ : torch Dataset or None
        The rows the network trained on.
    held_out_ : torch Dataset or None
        skorch's validation rows (the estimator's calibration rows).
    """

    def initialize(self):
        self.train_, self.held_out_ = None, None
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.train_, self.held_out_ = None, None     # a new fit: its own split

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self.train_ is None:
            self.train_, self.held_out_ = dataset_train, dataset_valid

    def forget(self):
        """Drop the datasets (so that a saved model does not carry them)."""
        self.initialize()


def network_outputs(clf, X, *, features, labels=False):
    """Logits, features (or None) and labels (or None) of every row of ``X``.

    One forward per batch through the estimator's own inference iterator (its batch size
    and device), with :func:`skood.detectors.capture_features` on the network: the features
    are the input of its last ``nn.Linear``. ``X`` is an array of rows, or a Dataset of
    (row, label) pairs such as :class:`HeldOutRows`' parts (``labels=True`` reads the
    labels, the estimator's class indices).
    """
    dataset = clf.get_dataset(X)
    logits, feature_chunks, label_chunks = [], [], []
    hook = capture_features(clf.module_) if features else _NoCapture()
    with torch.no_grad(), hook as captured:
        for batch in clf.get_iterator(dataset, training=False):
            output = clf.evaluation_step(batch, training=False)
            logits.append((output[0] if isinstance(output, (tuple, list)) else output).cpu())
            if features:
                feature_chunks.append(captured.pop().cpu())
            if labels:
                label_chunks.append(torch.as_tensor(unpack_data(batch)[1]).cpu())
    return (torch.cat(logits), torch.cat(feature_chunks) if features else None,
            torch.cat(label_chunks).numpy() if labels else None)


def fit_detectors(clf, names, rows):
    """Fit each named detector on the rows ``clf``'s network trained on.

    Parameters
    ----------
    clf : fitted skood.GradRegOODClassifier
        Fitted with a :class:`HeldOutRows` among its callbacks (``rows``).
    names : sequence of str
        Names of :data:`skood.detectors.DETECTORS`, each built with its defaults.
    rows : HeldOutRows
        The fit's split: detectors are fitted on ``rows.train_``;
        :class:`~skood.detectors.Fused` is calibrated on ``rows.held_out_``.

    Returns
    -------
    fitted : dict
        name -> the fitted detector, or the exception its fit raised (the other detectors
        are fitted all the same).
    seconds : dict
        name -> the time its fit (and calibration) took.
    """
    detectors = {name: make_detector(name) for name in names}
    need_features = any("features" in d.needs for d in detectors.values())
    need_labels = any(d.needs_labels for d in detectors.values())
    logits, features, y = network_outputs(clf, rows.train_, features=need_features,
                                          labels=need_labels)
    layer = last_linear(clf.module_) if any(d.needs_last_layer
                                            for d in detectors.values()) else None
    fitted, seconds, held_out = {}, {}, None
    for name, detector in detectors.items():
        start = time.perf_counter()
        try:
            detector.fit(features, logits, y, last_layer=layer)
            if callable(getattr(detector, "calibrate", None)):
                if rows.held_out_ is None:
                    raise ValueError(f"{name} is calibrated on the estimator's held-out rows, "
                                     "but the fit held none out (train_split=None).")
                if held_out is None:
                    held_out = network_outputs(clf, rows.held_out_, features=need_features)
                detector.calibrate(held_out[1], held_out[0])
            fitted[name] = detector
        except Exception as error:     # one detector's failure leaves the others scored
            fitted[name] = error
        seconds[name] = time.perf_counter() - start
    return fitted, seconds


def score_rows(clf, fitted, X):
    """The score of every row of ``X`` by each fitted detector (higher = more ID).

    Parameters
    ----------
    clf : fitted skood.GradRegOODClassifier
    fitted : dict
        name -> fitted detector (or an exception, passed on as it is), from
        :func:`fit_detectors`.
    X : ndarray
        The rows, as the network takes them.

    Returns
    -------
    scores : dict
        name -> float64 array of shape (n_rows,), or the exception its fit or scoring
        raised.
    seconds : dict
        name -> the time its scoring took (the shared forward pass left out).
    """
    working = {name: d for name, d in fitted.items() if not isinstance(d, Exception)}
    need_features = any("features" in d.needs for d in working.values())
    logits, features, _ = network_outputs(clf, X, features=need_features)
    scores, seconds = {}, {}
    for name, detector in fitted.items():
        start = time.perf_counter()
        if isinstance(detector, Exception):     # its fit failed: nothing to score with
            scores[name] = detector
        else:
            try:
                scores[name] = np.asarray(detector.score_samples(features, logits),
                                          np.float64)
            except Exception as error:
                scores[name] = error
        seconds[name] = time.perf_counter() - start
    return scores, seconds


class _NoCapture:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
