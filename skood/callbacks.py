"""skorch callbacks that skood adds to a fit."""
import math
import re
import sys

import numpy as np
from skorch.callbacks import Callback, PrintLog

from .exceptions import ChanceLevelWarning, warn_at_caller

__all__ = ["ChanceLevelCheck", "TerminalPrintLog"]


def _optimizer_settings(net):
    """The fit's optimizer, learning rate and (for SGD) momentum, as the hint quotes them."""
    optimizer = getattr(net, "optimizer_", None)
    groups = getattr(optimizer, "param_groups", None) or [{}]
    name = type(optimizer).__name__ if optimizer is not None else "optimizer"
    settings = f"{name} with lr={groups[0].get('lr', getattr(net, 'lr', None))!r}"
    if "momentum" in groups[0]:
        settings += f" and momentum={groups[0]['momentum']!r}"
    return settings


class ChanceLevelCheck(Callback):
    """Warn when a fit ends with the classifier at chance level.

    A GReg fit can stay at chance while the energy margin loss falls: the
    margin loss then moves all logits together instead of separating the
    classes (``docs/tuning.md``). At the end of training this callback reads
    the last epoch's validation accuracy (``valid_acc``; the training accuracy
    ``train_acc`` without a validation split) and cross-entropy (``train_ce``)
    and issues a :class:`~skood.exceptions.ChanceLevelWarning` when both say
    the classifier has learnt next to nothing:

    - ``accuracy - chance <= skill * (1 - chance)``, with ``chance`` the
      frequency of the most common class of the training labels, and
    - ``train_ce >= entropy_fraction * H``, with ``H`` the entropy of the class
      frequencies (``log(n_classes)`` for balanced classes: what a network
      that predicts the class frequencies scores).

    For 10 balanced classes that is an accuracy of at most 0.19 with a
    cross-entropy of at least 2.07. It is one of the estimator's default
    callbacks, named ``"chance_level_check"``; silence it with
    ``callbacks__chance_level_check=None`` or a warnings filter.

    Parameters
    ----------
    skill : float, default=0.1
        Accuracy above chance, as a fraction of ``1 - chance``, under which the
        fit counts as at chance.
    entropy_fraction : float, default=0.9
        Fraction of the label entropy that the final cross-entropy must reach.

    Examples
    --------
    >>> from skood.callbacks import ChanceLevelCheck
    >>> ChanceLevelCheck(skill=0.05).skill
    0.05
    """

    def __init__(self, skill=0.1, entropy_fraction=0.9):
        self.skill = skill
        self.entropy_fraction = entropy_fraction

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.frequencies_ = None
        if y is not None:
            counts = np.unique(np.asarray(y), return_counts=True)[1]
            self.frequencies_ = counts / counts.sum()

    def on_train_end(self, net, **kwargs):
        if self.frequencies_ is None or len(self.frequencies_) < 2 or not len(net.history):
            return
        last = net.history[-1]
        accuracy = last.get("valid_acc", last.get("train_acc"))
        cross_entropy = last.get("train_ce")
        if accuracy is None or cross_entropy is None:
            return
        chance = float(self.frequencies_.max())
        entropy = float(-(self.frequencies_ * np.log(self.frequencies_)).sum())
        if (accuracy - chance <= self.skill * (1 - chance)
                and cross_entropy >= self.entropy_fraction * entropy):
            warn_at_caller(
                f"The fit ended at chance level: accuracy {accuracy:.3f} (the most common "
                f"class alone gives {chance:.3f}) and cross-entropy {cross_entropy:.3f} "
                f"(predicting the class frequencies gives {entropy:.3f}). Likely causes: a "
                f"learning rate too low or no momentum (this fit: {_optimizer_settings(net)}; "
                "the default is SGD with lr=0.05 and momentum=0.9), margins m_in/m_out far "
                "below the network's starting energies "
                f"(about -log(n_classes) = {-math.log(len(self.frequencies_)):.2f}), or "
                "lambda_energy too large for the cross-entropy to make progress; or too few "
                "epochs. See the tuning page of the documentation.",
                ChanceLevelWarning)


# The colour codes skorch's PrintLog writes around the best values (skorch.utils.Ansi).
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _writes_to_terminal(sink):
    """Whether ``sink`` writes to a terminal: ``print`` writes to ``sys.stdout`` (read at
    each call, so that a redirection made later counts); a bound ``write`` method to its
    stream; any other callable is taken as not a terminal."""
    stream = sys.stdout if sink is print else getattr(sink, "__self__", None)
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:                  # a closed stream
        return False


class TerminalPrintLog(PrintLog):
    """skorch's :class:`~skorch.callbacks.PrintLog` that colours the best values only
    on a terminal.

    skorch's table marks each epoch's best values with ANSI colour codes, which
    show up as ``[32m`` and the like when the output goes to a file, a pipe or a
    notebook's captured stream. This callback writes them only when its sink
    writes to a terminal: ``print`` (the default) when ``sys.stdout.isatty()``
    is true, or the ``write`` method of a stream that is a terminal; for any
    other sink the table is plain. It is the estimator's default
    ``"print_log"``.

    Parameters
    ----------
    keys_ignored : str or list of str, optional
        skorch's: history keys left out of the table.
    sink : callable, default=print
        Where each line goes; colour codes are written only when it writes to a
        terminal.
    tablefmt : str, default="simple"
        skorch's: the ``tabulate`` table format.
    floatfmt : str, default=".4f"
        skorch's: the format of floats.
    stralign : str, default="right"
        skorch's: the alignment of strings.

    Examples
    --------
    >>> import io
    >>> log = TerminalPrintLog(sink=io.StringIO().write).initialize()
    >>> log.format_row({"loss": 0.5, "loss_best": True}, "loss", color="\x1b[32m")
    '0.5000'
    """

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not _writes_to_terminal(self.sink):
            return _ANSI_CODE.sub("", text)
        return text
