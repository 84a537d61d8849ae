"""Ctrl-C during a benchmark run: noticed even inside a fit, and ended with what finished.

:class:`_CtrlC` notes the signal while the runs go on; :func:`~skood.benchmark.runner.run`
then raises :class:`BenchmarkInterrupted`, which holds the results of the runs that ended.
"""
import signal
import threading

__all__ = ["BenchmarkInterrupted"]


class BenchmarkInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a benchmark run; what had finished is kept.

    A KeyboardInterrupt, so that it stops a caller that does not expect it.
    ``results``, ``scores`` and ``data`` are what :func:`~skood.benchmark.runner.run`
    returns, for the runs that ended before the interrupt (with ``out``, also on disk).
    """

    def __init__(self, results, scores, data):
        super().__init__("the benchmark was interrupted; the results of the runs that "
                         "ended are kept")
        self.results, self.scores, self.data = results, scores, data


class _CtrlC:
    """Notes a Ctrl-C (SIGINT) during the run. skorch ends a fit early on a
    KeyboardInterrupt and returns as if training had finished (``NeuralNet.partial_fit``
    catches it), so the run learns of the interrupt from the signal, not from ``fit``."""

    def __enter__(self):
        self.pressed, self._previous = False, None
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is threading.main_thread() and callable(previous):
            self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum, frame):
        self.pressed = True
        self._previous(signum, frame)     # Python's default raises KeyboardInterrupt

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
