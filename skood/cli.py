"""The ``skood`` command line: ``skood benchmark ...``."""
import argparse
import os
import shlex
import shutil
import sys
import time
import warnings
from dataclasses import fields

from . import __version__
from .detectors import DETECTORS
from ._classifier import DEFAULT_SGD_MOMENTUM
from ._objective import PENALTIES
from .benchmark import (DEFAULT_SEEDS, DEFAULTS, METHODS, PROTOCOLS, BenchmarkConfig,
                        BenchmarkConfigError, accuracy_gaps, markdown_tables, paired_differences,
                        split_differences, summary_sentences, write_report)
from .benchmark.config import DEFAULT_POOL_FACTOR, MIN_TRAIN_PER_CLASS
from .benchmark.data import DataNotFoundError
from .benchmark.methods import DEFAULT_DETECTORS, MODELS
from .benchmark.outlier_sources import AUX_SOURCES, PHOTOS, parse_aux
from .benchmark.report import detector_findings, failed_runs
from .benchmark.runner import BenchmarkInterrupted, run
from .benchmark.stats import finished


def _per_dataset(key):
    """The default of ``key`` per dataset, from ``DEFAULTS`` (None: all samples)."""
    values = {name: "all" if d[key] is None else d[key] for name, d in DEFAULTS.items()}
    if len(set(values.values())) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{v} for {name}" for name, v in values.items())


def _positive(kind, what):
    """An argparse type: ``kind`` of the text, refused unless above 0 (and finite)."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            noun = {int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")
            raise argparse.ArgumentTypeError(f"{what} must be {noun} above 0, "
                                             f"got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be above 0, got {text!r}")
        return value
    convert.__name__ = kind.__name__
    return convert


def _fraction(text):
    """An argparse type: a float in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"--penalty-fraction must be a number in (0, 1], "
                                         f"got {text!r}")
    return value


def _splits(text):
    """An argparse type: a positive number of class splits, or ``neal``."""
    if text == "neal":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--splits must be a positive integer or 'neal', "
                                         f"got {text!r}")
    return value


def _aux(text):
    """An argparse type: an outlier source, or sources joined with ``+``."""
    try:
        parse_aux(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--{str(error).rstrip('.')}") from None
    return text


def build_parser():
    parser = argparse.ArgumentParser(prog="skood", description="skood: OOD detection with GReg.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "benchmark", help="train CE, energy-OE, GReg and GReg+ and compare them on real OOD data",
        description="Train cross-entropy, energy outlier exposure, GReg and GReg+ with the same "
                    "network, epochs, data order and seed; report FPR95, AUROC, AUPR-In, "
                    "AUPR-Out (ID positive), ID accuracy and training time; write markdown, CSV "
                    "and PNG figures.")
    # So that checks across options can report through the subcommand's own usage.
    bench.set_defaults(benchmark_parser=bench)
    bench.add_argument("--dataset", choices=sorted(DEFAULTS), default="digits",
                       help="in-distribution data (default: %(default)s)")
    bench.add_argument("--protocol", choices=PROTOCOLS, default="heldout",
                       help="heldout: per class split, the known classes train and the test "
                            "images of the held-out ones are the near OOD set (4 of 10 held "
                            "out; 50 of 100 for cifar100); full: all classes known, one split, "
                            "far OOD sets only (default: %(default)s)")
    bench.add_argument("--splits", type=_splits, metavar="N|neal",
                       help="class splits: N drawn at random (distinct, seeded by --split-seed) "
                            "among all choices of the held-out classes, or neal: the five fixed "
                            "MNIST open-set splits of Neal et al. (2018) "
                            f"(default: {_per_dataset('splits')})")
    bench.add_argument("--split-seed", type=int, default=0,
                       help="seed of the draw of the class splits (default: %(default)s)")
    bench.add_argument("--model", choices=list(MODELS),
                       help=f"network (default: {_per_dataset('model')})")
    bench.add_argument("--epochs", type=int,
                       help=f"training epochs (default: {_per_dataset('epochs')})")
    bench.add_argument("--device", default="cpu",
                       help="torch device, cpu or cuda (default: %(default)s)")
    bench.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                       help="random seeds, distinct and >= 0: every class split runs once per "
                            "seed; a seed varies the split's train/test split, outlier draw, "
                            "initialisation and batch order; statistics average a split's "
                            "seeds, the split is the unit (default: %(default)s)")
    bench.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                       help=f"training methods (default: all, {' '.join(METHODS)})")
    bench.add_argument("--detectors", nargs="+", type=str.lower, choices=list(DETECTORS),
                       default=list(DEFAULT_DETECTORS), metavar="NAME",
                       help="score every trained network with each of these detectors, fitted "
                            "on the rows it trained on (one training, many scores): "
                            f"{', '.join(DETECTORS)}; with two or more, each run also chooses "
                            "one for cross-entropy on held-out classes of its training rows "
                            "(ce_chosen) (default: %(default)s)")
    bench.add_argument("--out", default="benchmark-results",
                       help="folder for tables and figures; results.csv there gets each "
                            "(split, seed, method) as it ends, so a stopped run keeps what "
                            "finished (default: %(default)s)")
    bench.add_argument("--resume", action="store_true",
                       help="continue the run whose results are in --out: keep and skip the "
                            "(split, seed, method) runs that finished there, run the failed "
                            "and missing ones, then report on all; refused when --out's "
                            "config.json holds other settings (default: off, the run starts "
                            "--out's results.csv afresh)")
    bench.add_argument("--save-models", metavar="DIR",
                       help="save every trained model there with joblib (default: not saved)")
    bench.add_argument("--penalty", choices=sorted(PENALTIES), default="exact",
                       help="gradient penalty of GReg and GReg+: exact (double backward) or fd "
                            "(finite difference) (default: %(default)s)")
    bench.add_argument("--penalty-fraction", type=_fraction, default=1.0,
                       help="fraction of each step's rows the gradient penalty is computed on, "
                            "in (0, 1] (default: %(default)s)")
    bench.add_argument("--pool-factor", type=_positive(int, "--pool-factor"),
                       default=DEFAULT_POOL_FACTOR,
                       help="GReg+'s candidate pool per in-distribution sample; smaller is "
                            "cheaper, see the tuning guide (default: %(default)s, the "
                            "paper's)")
    bench.add_argument("--aux", type=_aux, default=PHOTOS, metavar="SOURCE",
                       help="auxiliary outliers of the outlier methods: photos (crops of "
                            "photographs), a synthesizer made from each fit's training rows "
                            f"({', '.join(AUX_SOURCES[1:])}), or photos and one synthesizer "
                            "joined with '+', e.g. photos+patch-shuffle (default: %(default)s)")
    bench.add_argument("--n-train", type=int,
                       help="in-distribution training samples, a random subsample; at "
                            f"least {MIN_TRAIN_PER_CLASS} per known class; all when fewer are "
                            f"available (default: {_per_dataset('n_train')})")
    bench.add_argument("--n-test", type=int,
                       help=f"in-distribution test samples (default: {_per_dataset('n_test')})")
    bench.add_argument("--n-aux", type=int,
                       help=f"auxiliary outliers (default: {_per_dataset('n_aux')})")
    bench.add_argument("--n-ood", type=int,
                       help=f"samples per OOD test set (default: {_per_dataset('n_ood')})")
    bench.add_argument("--batch-size", type=int,
                       help=f"training batch size (default: {_per_dataset('batch_size')})")
    bench.add_argument("--lr", type=float,
                       help=f"learning rate of SGD with momentum {DEFAULT_SGD_MOMENTUM} "
                            f"(default: {_per_dataset('lr')})")
    bench.add_argument("--m-in", type=float,
                       help="energy margin of the in-distribution samples "
                            f"(default: {_per_dataset('m_in')})")
    bench.add_argument("--m-out", type=float,
                       help="energy margin of the auxiliary outliers "
                            f"(default: {_per_dataset('m_out')})")
    bench.add_argument("--threads", type=int, dest="n_threads",
                       help="CPU threads of torch and of numpy's BLAS (default: 1 for "
                            "digits, their defaults for fashion-mnist)")
    bench.add_argument("--finetune", action="store_true",
                       help="fine-tuning protocol: per seed, ce trains from scratch, then "
                            "energy_oe, greg and greg_plus each fine-tune a copy of that CE "
                            "network (ce is trained even if --methods leaves it out) "
                            "(default: off, every method trains from scratch)")
    bench.add_argument("--finetune-epochs", type=_positive(int, "--finetune-epochs"),
                       metavar="N",
                       help="fine-tuning epochs, with --finetune only "
                            f"(default: {_per_dataset('finetune_epochs')})")
    bench.add_argument("--finetune-lr", type=_positive(float, "--finetune-lr"), metavar="LR",
                       help="fine-tuning learning rate, with --finetune only "
                            f"(default: {_per_dataset('finetune_lr')})")
    bench.add_argument("--data-home",
                       help="folder with the dataset's files: Fashion-MNIST's IDX files; for "
                            "cifar10 and cifar100 their python-version folder or .tar.gz, and "
                            "the far sets found there (SVHN's test_32x32.mat, the folders "
                            "dtd/images, places365, LSUN, LSUN_resize, iSUN), each skipped with "
                            "a hint when absent (default: $SKOOD_DATA, then, for Fashion-MNIST, "
                            "Debian's /usr/share/datasets/fashion-mnist)")
    bench.add_argument("--quiet", action="store_true",
                       help="no progress bars (default: progress bars on)")
    return parser


def _config(args, bench):
    """The run's :class:`BenchmarkConfig`; a bad setting becomes a usage error
    (exit code 2) that names the option, before any data is loaded."""
    # argparse has no public listing of a parser's options: its actions map dests to flags
    options = {action.dest: max(action.option_strings, key=len) for action in bench._actions
               if action.option_strings}
    settings = {f.name: getattr(args, f.name) for f in fields(BenchmarkConfig)
                if f.init and f.name != "progress"}
    try:
        return BenchmarkConfig(**settings, progress=not args.quiet)
    except BenchmarkConfigError as error:
        option = options.get(error.parameter, error.parameter)
        message = str(error).replace(error.parameter, option, 1)
        bench.error(message)


def _console_warning(message, category, filename, lineno, file=None, line=None):
    """Show a warning as one line, without a source location: on the command line the
    frame a warning is attributed to is the command's own (or runpy's), not the user's."""
    print(f"warning: {category.__name__}: {message}",
          file=sys.stderr if file is None else file, flush=True)


def main(argv=None):
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    with warnings.catch_warnings():
        warnings.showwarning = _console_warning
        return _main(argv)


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.finetune:
        given = [option for option, value in (("--finetune-epochs", args.finetune_epochs),
                                              ("--finetune-lr", args.finetune_lr))
                 if value is not None]
        if given:
            args.benchmark_parser.error(f"{' and '.join(given)} need --finetune (the "
                                        "fine-tuning protocol): add --finetune, or drop them")
    command = "skood " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    made = [_first_missing(path) for path in (args.out, args.save_models) if path]
    config = _config(args, bench=args.benchmark_parser)
    interrupted = False
    try:
        results, scores, data = run(config, log=lambda line: print(line, flush=True))
    except DataNotFoundError as error:
        # the in-distribution data is not on this machine: say where to get it, no traceback,
        # and take back the output folders made for the run when nothing was written there
        for folder in made:
            _remove_if_empty(folder)
        message = str(error).replace("(data_home=None)", "(no --data-home)")
        args.benchmark_parser.exit(1, "skood benchmark: error: "
                                      f"{message.replace('data_home=', '--data-home')}\n")
    except BenchmarkInterrupted as stop:
        results, scores, data = stop.results, stop.scores, stop.data
        interrupted = True
        print(f"\ninterrupted: the runs that ended are in {args.out}/results.csv; rerun the "
              "same command with --resume to run the others.", flush=True)
    failures = failed_runs(results)
    if not len(finished(results)):
        for line in failures:
            print(f"failed: {line}")
        print(f"\nno run finished, so there is no report; {args.out}/results.csv lists the "
              "failed runs.")
        return 130 if interrupted else 1
    start_from = ", fine-tuned from CE" if args.finetune else ""
    if args.aux != PHOTOS:
        start_from += f", outliers: {args.aux}"
    # computed once, for the files and the console alike
    per_split = split_differences(results)
    paired = paired_differences(results, per_split=per_split)
    gaps = accuracy_gaps(results)
    tables = markdown_tables(results, paired=paired, gaps=gaps)
    written = write_report(results, scores, args.out,
                           title=f"skood benchmark: {args.dataset} ({args.protocol}{start_from})",
                           command=command, skipped=data.skipped, per_split=per_split,
                           paired=paired, gaps=gaps, tables=tables, notes=data.notes)
    print()
    print(tables)
    print()
    for line in summary_sentences(paired):
        print(line)
    for heading, lines in detector_findings(paired, results):
        print(f"\n{heading}:")
        for line in lines:
            print(line)
    for name, why in data.skipped.items():
        print(f"OOD set {name} skipped: {why}.")
    for line in failures:
        print(f"failed, left out of the statistics: {line}")
    print(f"\nwrote {', '.join(written)} in {time.perf_counter() - start:.0f} s")
    if interrupted:
        return 130
    return 1 if failures else 0


def _first_missing(path):
    """The outermost folder of ``path`` that does not exist yet (None: it exists)."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def _remove_if_empty(folder):
    """Remove ``folder`` (made by this command) if no file was written under it."""
    if folder is None or not os.path.isdir(folder):
        return
    if not any(files for _, _, files in os.walk(folder)):
        shutil.rmtree(folder)


if __name__ == "__main__":
    sys.exit(main())
