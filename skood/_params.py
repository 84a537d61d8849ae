"""What the estimator's parameters may be, and what ``set_params`` does to a fitted model.

:class:`ParamsMixin` checks the values of the estimator's own parameters
against its ``_parameter_constraints`` (at fit, and at ``set_params`` on a
fitted model) and keeps a fitted model's network, scores and thresholds
together when ``set_params`` changes one of them: the rule is in the Notes of
:class:`skood.GradRegOODClassifier`.
"""
import copy
import numbers

import torch
from sklearn.utils._param_validation import validate_parameter_constraints

from ._validation import check_device

__all__ = ["DETECTOR_PARAMS", "RECALIBRATE_PARAMS", "REFIT_PARAMS", "ParamsMixin"]

# set_params on a fitted model (see the class docstring): these parameters change
# the network, the scores or the class labels, so the fitted OOD state is dropped
# (besides them: module__* and compile*, with which skorch re-initialises the network).
REFIT_PARAMS = ("module", "temperature", "classes")
# This one changes the score but not the network: the detector is fitted again on the
# last fit's training rows and the thresholds recalibrated, without training.
DETECTOR_PARAMS = ("detector",)
# These only choose the threshold(s), recomputed exactly from the stored scores.
RECALIBRATE_PARAMS = ("ood_tpr", "calibration")


class ParamsMixin:
    """Parameter checks and ``set_params`` of :class:`skood.GradRegOODClassifier`.

    A mixin placed before skorch's ``NeuralNetClassifier`` among the bases; it
    defines no parameters (scikit-learn reads them from the final class's
    ``__init__``). It relies on the estimator's ``_parameter_constraints``,
    ``_fit_state``, ``_drop_fitted_state``, ``_set_thresholds`` and
    ``_refit_detector``.
    """

    def _check_hyperparameters(self):
        """Check the values of the estimator's own parameters, as fit does first."""
        self._check_constrained({name: getattr(self, name)
                                 for name in self._parameter_constraints})
        if self.m_in >= self.m_out:
            raise ValueError(
                f"m_in must be lower than m_out (ID energies are pushed below m_in, outlier "
                f"energies above m_out), got m_in={self.m_in} and m_out={self.m_out}.")

    def _check_constrained(self, params):
        """Check the values of this class's own constrained parameters among ``params``."""
        # validate_parameter_constraints lives in a private sklearn module and is called
        # directly because skorch's own _validate_params shadows BaseEstimator's method
        # of that name.
        constraints = {name: self._parameter_constraints[name] for name in params
                       if name in self._parameter_constraints}
        params = {name: params[name] for name in constraints}
        validate_parameter_constraints(constraints, params, caller_name=type(self).__name__)
        for name, allowed in constraints.items():
            # Interval(Real) admits bools (True is an int); a bool here is a mistake.
            if isinstance(params[name], bool) and "boolean" not in allowed:
                raise ValueError(f"{name} must be a number, got {params[name]!r}.")

    def get_params(self, deep=True, **kwargs):
        # skorch lists every attribute not ending in "_" as a parameter, including
        # its own bookkeeping (_params_to_validate) and this class's _fit_state.
        params = super().get_params(deep=deep, **kwargs)
        return {name: value for name, value in params.items() if not name.startswith("_")}

    def set_params(self, **params):
        """Set parameters; ``sampler__<name>`` and ``synthesizer__<name>`` reach an
        estimator-valued ``sampler`` and ``synthesizer``.

        On a fitted model (see the class Notes): ``module``, ``module__*``,
        ``compile*``, ``temperature`` and ``classes`` leave it unfitted;
        ``detector`` fits the new detector on the last fit's training rows and
        recalibrates, without training (a model loaded from disk or copied is left
        unfitted instead, with a warning); ``ood_tpr`` and ``calibration``
        recompute its thresholds from the stored calibration scores; the other
        parameters leave it as it is. A refused
        call (unknown name; on a fitted model, an invalid value) changes nothing.

        Parameters
        ----------
        **params
            Estimator parameters, skorch's prefixed ones (``module__*``,
            ``optimizer__*``, ``callbacks__*``, ...), ``sampler__*`` and
            ``synthesizer__*``.

        Returns
        -------
        self
        """
        # Outside fit only: callbacks may set parameters during training, whose
        # end calibrates anyway.
        fitted = self._fit_state is None and hasattr(self, "offset_")
        given = dict(params)
        nested = self._check_set_params(params, fitted)
        before = {name: getattr(self, name)
                  for name in (*REFIT_PARAMS, *DETECTOR_PARAMS, *RECALIBRATE_PARAMS)}
        # A call refused below (by skorch, or with no valid threshold) changes nothing.
        # skorch's _params_to_validate is a set it adds to: copied, not shared.
        snapshot = dict(vars(self))
        to_validate = set(getattr(self, "_params_to_validate", ()))
        # set in place, so not in the snapshot: the nested owners' parameters and the
        # optimizer's settings (skorch writes optimizer__* into its param_groups)
        owners_before = {owner: getattr(self, owner).get_params(deep=False)
                         for owner in ("sampler", "synthesizer")
                         if nested[owner] and owner not in params}
        optimizer_before = (copy.deepcopy(self.optimizer_.state_dict())
                            if hasattr(self, "optimizer_") else None)
        try:
            for owner in ("sampler", "synthesizer"):
                # a new owner given in the same call takes its nested parameters
                if owner in params:
                    setattr(self, owner, params.pop(owner))
                if nested[owner]:
                    getattr(self, owner).set_params(**nested[owner])
            params = {name: value for name, value in params.items()
                      if not name.startswith(("sampler__", "synthesizer__"))}
            if params:
                super().set_params(**params)
            if "device" in given and self._fit_state is None:
                self._move_to_device()
            if fitted:
                self._keep_fitted_state_consistent(given, before)
        except BaseException:
            vars(self).clear()
            vars(self).update(snapshot)
            if "_params_to_validate" in snapshot:
                self._params_to_validate = to_validate
            for owner, owner_params in owners_before.items():
                getattr(self, owner).set_params(**owner_params)
            if optimizer_before is not None:
                self.optimizer_.load_state_dict(optimizer_before)
            raise
        return self

    def _check_set_params(self, params, fitted):
        """Refuse unknown names, and on a fitted model invalid values, of set_params
        before anything is set; return the ``sampler__*`` / ``synthesizer__*``
        parameters by owner. (An unfitted model's values are checked by fit, as
        scikit-learn's convention has it: set_params on it refuses no value.)"""
        known = set(self.get_params(deep=False))
        unknown = sorted(name for name in params if "__" not in name
                         and name not in known and not name.startswith("callbacks")
                         and not self._is_virtual_param(name))
        if unknown:
            raise ValueError(
                f"Invalid parameter {unknown[0]!r} for estimator {type(self).__name__}; nothing "
                f"was set. Valid parameters are: {sorted(known)}.")
        if fitted:
            self._check_constrained(params)
        if "device" in params and self._fit_state is None and hasattr(self, "module_"):
            # the network is moved there (see _move_to_device): refuse first a device
            # this machine cannot use, so that nothing is changed
            check_device(params["device"])
        nested = {}
        for owner, example in (("sampler", "EnergySampler()"),
                               ("synthesizer", "skood.synthesis.PatchShuffle()")):
            prefix = owner + "__"
            nested[owner] = {name[len(prefix):]: value for name, value in params.items()
                             if name.startswith(prefix)}
            if not nested[owner]:
                continue
            value = params.get(owner, getattr(self, owner))
            if not hasattr(value, "set_params"):
                raise ValueError(
                    f"{prefix} parameters ({sorted(nested[owner])}) need an estimator-valued "
                    f"{owner} such as {owner}={example}; {owner} is {value!r}.")
            valid = set(value.get_params(deep=True))
            bad = sorted(name for name in nested[owner] if name.split("__")[0] not in valid)
            if bad:
                raise ValueError(
                    f"Invalid parameter {prefix}{bad[0]}: {owner} {type(value).__name__} has "
                    f"the parameters {sorted(valid)}; nothing was set.")
        return nested

    def _move_to_device(self):
        """Move an initialised model's modules and criteria to ``device`` (``None``:
        leave them where they are), and the optimizers' state with them."""
        if self.device is None or not hasattr(self, "module_"):
            return
        # skorch lists its modules, criteria and optimizers only in the private
        # _modules, _criteria and _optimizers; it has no public registry of them.
        states = {name: getattr(self, name + "_").state_dict() for name in self._optimizers
                  if isinstance(getattr(self, name + "_", None), torch.optim.Optimizer)}
        for name in (*self._modules, *self._criteria):
            value = getattr(self, name + "_", None)
            if isinstance(value, torch.nn.Module):
                value.to(self.device)
        if states:
            # A move across tensor types (e.g. to "meta") makes new Parameter objects:
            # the optimizer is rebuilt on the moved parameters, and load_state_dict
            # casts its state (e.g. momentum) to their device.
            self.initialize_optimizer()
            for name, state in states.items():
                getattr(self, name + "_").load_state_dict(state)

    def _keep_fitted_state_consistent(self, given, before):
        """Apply the class docstring's rule for set_params on a fitted model; ``before``
        holds the earlier values of the parameters the rule compares."""
        def same(old, new):
            # values, not types: np.float64(1.0) is the same temperature as 1.0 (bools
            # are not numbers here: True is not the same parameter value as 1)
            both_numbers = all(isinstance(value, numbers.Real) and not isinstance(value, bool)
                               for value in (old, new))
            try:
                return old is new or ((type(old) is type(new) or both_numbers)
                                      and bool(old == new))
            except (TypeError, ValueError):     # e.g. arrays: no single truth value
                return False

        def unfits(name):
            prefix = name.split("__", 1)[0]
            if name in REFIT_PARAMS:
                return not same(before[name], given[name])
            # skorch re-initialises a registered module on any of its prefixed parameters
            return prefix == "compile" or ("__" in name and prefix in self._modules)

        def shown(names):
            return ", ".join(f"{name}={given[name]!r}" if len(repr(given[name])) <= 40
                             else f"{name}=..." for name in names)

        changed = [name for name in given if unfits(name)]
        detector = [name for name in given if name in DETECTOR_PARAMS
                    and not same(before[name], given[name])]
        recalibrate = [name for name in given if name in RECALIBRATE_PARAMS
                       and not same(before[name], given[name])]
        if changed:
            if "module" in changed:
                # The next fit or partial_fit builds the new network.
                self.initialized_ = False
            self._drop_fitted_state(
                f"set_params({shown(changed)}) changed the network, its scores or its labels "
                "after fit, so offset_ and the calibration scores no longer apply")
        elif detector:
            # A ValueError here (the new detector refuses these rows) is refused by
            # set_params, which then restores the model as it was.
            self._refit_detector(shown(detector))
        elif recalibrate:
            # A ValueError here (no valid threshold) is refused by set_params, which then
            # restores the model as it was.
            self._set_thresholds()
