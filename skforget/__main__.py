"""Command line: ``python -m skforget demo``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skforget", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="fit, forget rows and compare with a refit, on bundled real data"
    )
    demo.add_argument("--fraction", type=float, default=0.1,
                      help="fraction of the training rows to forget (default 0.1)")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from skforget._demo import run_demo

        if not 0.0 < args.fraction < 1.0:
            parser.error("--fraction must be between 0 and 1")
        return 0 if run_demo(forget_fraction=args.fraction, seed=args.seed) else 1
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
