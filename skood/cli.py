"""The ``skood`` command line: ``skood benchmark ...``."""
import argparse
import shlex
import sys
import time

from .benchmark import (DEFAULT_SEEDS, DEFAULTS, METHODS, PROTOCOLS, markdown_tables,
                        paired_differences, run_benchmark, summary_sentences, write_report)


def build_parser():
    parser = argparse.ArgumentParser(prog="skood", description="skood: OOD detection with GReg.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "benchmark", help="train CE, energy-OE, GReg and GReg+ and compare them on real OOD data",
        description="Train cross-entropy, energy outlier exposure, GReg and GReg+ with the same "
                    "network, epochs, data order and seed; report FPR95, AUROC, AUPR-In, "
                    "AUPR-Out (ID positive), ID accuracy and training time; write markdown, CSV "
                    "and PNG figures.")
    bench.add_argument("--dataset", choices=sorted(DEFAULTS), default="digits")
    bench.add_argument("--protocol", choices=PROTOCOLS, default="heldout",
                       help="heldout (default): 6 known classes, the test images of the other 4 "
                            "are the near OOD set, split HELDOUT_SPLITS[seed %% 5]; full: all 10 "
                            "classes known, far OOD sets only")
    bench.add_argument("--model", choices=["mlp", "cnn", "resnet18"],
                       help="network (default: mlp for digits, cnn for fashion-mnist)")
    bench.add_argument("--epochs", type=int, help="training epochs (default: per dataset)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    bench.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                       help=f"one run per seed and method (default: "
                            f"{' '.join(map(str, DEFAULT_SEEDS))})")
    bench.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    bench.add_argument("--out", default="benchmark-results", help="folder for tables and figures")
    bench.add_argument("--save-models", metavar="DIR",
                       help="save every trained model there with joblib")
    bench.add_argument("--penalty", choices=["exact", "fd"], default="exact")
    bench.add_argument("--n-train", type=int, help="in-distribution training samples")
    bench.add_argument("--n-test", type=int, help="in-distribution test samples")
    bench.add_argument("--n-aux", type=int, help="auxiliary outliers")
    bench.add_argument("--n-ood", type=int, help="samples per OOD test set")
    bench.add_argument("--batch-size", type=int)
    bench.add_argument("--lr", type=float)
    bench.add_argument("--m-in", type=float)
    bench.add_argument("--m-out", type=float)
    bench.add_argument("--threads", type=int, dest="n_threads",
                       help="torch CPU threads (default: 1 for digits, torch's default for "
                            "fashion-mnist)")
    bench.add_argument("--data-home", help="folder with Fashion-MNIST's IDX files")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = "skood " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    results, scores, data = run_benchmark(
        args.dataset, protocol=args.protocol, model=args.model, epochs=args.epochs,
        device=args.device,
        seeds=tuple(args.seeds), methods=tuple(args.methods), save_models=args.save_models,
        progress=not args.quiet, data_home=args.data_home, penalty=args.penalty,
        n_train=args.n_train, n_test=args.n_test, n_aux=args.n_aux, n_ood=args.n_ood,
        batch_size=args.batch_size, lr=args.lr, m_in=args.m_in, m_out=args.m_out,
        n_threads=args.n_threads, log=lambda line: print(line, flush=True))
    written = write_report(results, scores, args.out,
                           title=f"skood benchmark: {args.dataset} ({args.protocol})",
                           command=command, skipped=data.skipped)
    print()
    print(markdown_tables(results))
    print()
    for line in summary_sentences(paired_differences(results)):
        print(line)
    for name, why in data.skipped.items():
        print(f"OOD set {name} skipped: {why}.")
    print(f"\nwrote {', '.join(written)} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
