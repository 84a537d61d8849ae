"""What one fit needs and a fitted model must not keep, in one object.

The estimator creates a :class:`FitState` when a fit starts and drops it when
the fit ends (``GradRegOODClassifier._fit_state_for``), so that the outliers,
the sampler's state, the GradScaler and the calibration rows are never pickled
with the model and no call outside ``fit`` sees them.
"""
from dataclasses import dataclass

__all__ = ["FitState"]


@dataclass
class FitState:
    """Per-fit state of :class:`skood.GradRegOODClassifier`.

    Attributes
    ----------
    outliers : skood._outliers.AuxiliaryData or None
        The auxiliary outliers, placed for fast gathers on the training device;
        ``None`` when the objective uses no outliers.
    sampler : object or None
        The sampler that draws them (``RandomOutlierSampler``, ``EnergySampler``
        or a user's object with ``reset`` and ``draw``).
    sampler_state : object or None
        What ``sampler.reset`` returned for this fit.
    outliers_per_id_sample : float
        The outlier batch size of a step, per ID sample.
    grad_scaler : torch.amp.GradScaler or None
        Under ``amp="fp16"``.
    penalty_generator : torch.Generator or None
        Draws the rows of the gradient penalty when ``penalty_fraction < 1``.
    calibration_dataset : object or None
        The held-out ID rows of skorch's validation split, set when the split
        is made; ``offset_`` is calibrated on them.
    split : tuple or None
        ``(dataset_train, dataset_valid)`` when the fit made skorch's split
        before training (to run a synthesizer on the training rows only);
        skorch then uses this split.
    """

    outliers: object = None
    sampler: object = None
    sampler_state: object = None
    outliers_per_id_sample: float = 1.0
    grad_scaler: object = None
    penalty_generator: object = None
    calibration_dataset: object = None
    split: object = None

    def draw_outliers(self, n_in, device):
        """The outlier batch of a step whose ID batch has ``n_in`` rows."""
        n_outliers = max(1, int(round(self.outliers_per_id_sample * n_in)))
        return self.sampler.draw(self.sampler_state, self.outliers, n_in, n_outliers, device)
