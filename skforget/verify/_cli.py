"""``python -m skforget verify MODEL DATA.csv --forget ROWS``: a forget-vs-refit report."""

import csv
import json

import numpy as np

__all__ = ["parse_rows", "read_csv", "run_verify"]


def parse_rows(spec):
    """Row numbers from ``"3,17,100-199"`` (ranges inclusive); ``@FILE`` reads more from a file.

    A file holds the same items, separated by commas or whitespace.

    Examples
    --------
    >>> from skforget.verify._cli import parse_rows
    >>> parse_rows("3, 17,100-103")
    array([  3,  17, 100, 101, 102, 103])
    """
    parts = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if part.startswith("@"):
            with open(part[1:]) as fh:
                parts.extend(filter(None, fh.read().replace(",", " ").split()))
        else:
            parts.append(part)
    rows = []
    for part in parts:
        lo, dash, hi = part.partition("-")
        try:
            if dash:
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                rows.extend(range(lo, hi + 1))
            else:
                rows.append(int(part))
        except ValueError:
            raise ValueError(
                f"Bad row number or range {part!r}: use e.g. '3,17,100-199' or '@rows.txt'."
            ) from None
    if not rows:
        raise ValueError("--forget names no rows.")
    return np.asarray(rows, dtype=np.intp)


def read_csv(path, *, sep=",", header=False, label=None):
    """Numeric feature columns and a label column from a CSV file.

    Parameters
    ----------
    path : str
    sep : str, default=","
    header : bool, default=False
        Whether the first line names the columns.
    label : str or int, default=None
        The label column: a name (with ``header``) or a 0-based position;
        default the last column.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns - 1), float64
    y : ndarray of shape (n_rows,)
        Numbers where every label parses as one, else stripped strings.
    """
    with open(path, newline="") as fh:
        rows = [[c.strip() for c in r] for r in csv.reader(fh, delimiter=sep) if r]
    names = rows.pop(0) if header else None
    if not rows:
        raise ValueError(f"{path} holds no data rows.")
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"{path}: data row {bad} has {len(rows[bad])} fields, not {width}.")
    if label is None:
        col = width - 1
    elif names is not None and label in names:
        col = names.index(label)
    else:
        try:
            col = int(label)
        except ValueError:
            raise ValueError(f"No label column {label!r} in {path}.") from None
        if not -width <= col < width:
            raise ValueError(f"Label column {col} is outside the {width} columns of {path}.")
        col %= width
    table = np.asarray(rows, dtype=object)
    y = table[:, col].astype(str)
    try:
        X = np.delete(table, col, axis=1).astype(np.float64)
    except ValueError as exc:
        raise ValueError(
            f"{path}: every feature column must be numeric (encode categories the way "
            f"the model was trained): {exc}"
        ) from None
    try:
        y_num = y.astype(np.float64)
    except ValueError:
        return X, y
    return X, (y_num.astype(np.int64) if np.all(y_num == np.round(y_num)) else y_num)


def _model_from(obj):
    if isinstance(obj, dict) and "model" in obj:
        return obj["model"]
    return obj


def run_verify(args, out=print):
    """Load the model, read the data, print the report; 0 when it matches the refit."""
    from skforget.io import load
    from skforget.verify import compare_to_refit

    model = _model_from(load(args.model, format=args.format, trusted=args.trust))
    X, y = read_csv(args.data, sep=args.sep, header=args.header, label=args.label)
    classes = getattr(model, "classes_", None)
    if classes is not None and np.asarray(classes).dtype.kind in "OUS":
        y = y.astype(str)
    report = compare_to_refit(model, X, y, parse_rows(args.forget), n_seeds=args.seeds,
                              tol=args.tol)
    out(json.dumps(report.to_dict(), indent=2) if args.json else str(report))
    return 0 if report.matches_refit else 1


def add_parser(commands):
    """The ``verify`` subcommand's arguments."""
    verify = commands.add_parser(
        "verify", help="forget rows from a saved model and compare it with a refit on "
                       "the remaining rows (exit status 1 when they differ)")
    verify.add_argument("model", help="model file written by skforget.io.dump, fitted on "
                                      "exactly the rows of DATA, none forgotten yet")
    verify.add_argument("data", help="CSV file of the training rows: numeric features "
                                     "and a label column")
    verify.add_argument("--forget", required=True, metavar="ROWS",
                        help="rows to forget: '3,17,100-199' (ranges inclusive) or @FILE")
    verify.add_argument("--label", default=None,
                        help="label column: name (with --header) or 0-based position "
                             "(default: the last column)")
    verify.add_argument("--sep", default=",", help="field separator (default ',')")
    verify.add_argument("--header", action="store_true",
                        help="the first line of DATA names the columns")
    verify.add_argument("--seeds", type=int, default=None,
                        help="seeds for a randomised estimator (default 5)")
    verify.add_argument("--tol", type=float, default=1e-6,
                        help="tolerance for 'matches refit' (default 1e-6)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--format", default="skops", choices=["skops", "joblib"],
                        help="MODEL's format (joblib unpickles: only files you wrote)")
    verify.add_argument("--trust", action="append", default=None, metavar="TYPE",
                        help="a further type to trust when loading MODEL (repeatable)")
    return verify
