"""Command line: ``python -m skforget demo``, ``serve MODEL`` and ``verify MODEL DATA``."""

import argparse
import os
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
    serve = commands.add_parser(
        "serve", help="serve a saved model over HTTP, honouring deletion requests "
                      "(needs the 'serve' extra)")
    serve.add_argument("model", help="model file written by skforget.io.dump")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--journal", default=None,
                       help="SQLite deletion journal (default MODEL.journal)")
    serve.add_argument("--token-file", default=None,
                       help="file holding the bearer token for /forget and /audit "
                            "(default: $SKFORGET_SERVE_TOKEN, else no token)")
    serve.add_argument("--trust", action="append", default=None, metavar="TYPE",
                       help="a further type to trust when loading MODEL (repeatable)")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    from skforget.verify._cli import add_parser as add_verify_parser

    add_verify_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "verify":
        from skforget.verify._cli import run_verify

        try:
            return run_verify(args)
        except (ImportError, OSError, ValueError, TypeError) as exc:
            parser.error(f"verify: {exc}")
    if args.command == "serve":
        import importlib.util

        missing = [m for m in ("fastapi", "uvicorn", "skops") if importlib.util.find_spec(m) is None]
        if missing:
            parser.error(f"serve needs {', '.join(missing)}: pip install 'skforget[serve]'")
        from skforget.serve import serve as run_server

        token = None
        if args.token_file is not None:
            with open(args.token_file) as fh:
                token = fh.read().strip() or None
        if not os.path.isfile(args.model):
            parser.error(f"no model file at {args.model}")
        try:
            run_server(args.model, host=args.host, port=args.port, journal_path=args.journal,
                       token=token, trusted=args.trust, log_level=args.log_level)
        except (ValueError, TypeError, RuntimeError) as exc:  # refused to start: say why
            print(f"python -m skforget serve: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "demo":
        from skforget._demo import run_demo

        if not 0.0 < args.fraction < 1.0:
            parser.error("--fraction must be between 0 and 1")
        return 0 if run_demo(forget_fraction=args.fraction, seed=args.seed) else 1
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
