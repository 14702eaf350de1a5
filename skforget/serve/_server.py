"""Run the scoring service with uvicorn (``python -m skforget serve``)."""

import gc
import ipaddress
import logging
import os
import sys

from skforget.serve._app import create_app
from skforget.serve._service import ForgetService

logger = logging.getLogger("skforget.serve")

#: Environment variable holding the bearer token, when no token file is given.
TOKEN_ENV = "SKFORGET_SERVE_TOKEN"


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model_path, *, host="127.0.0.1", port=8000, journal_path=None, token=None,
          trusted=None, log_level="info", sync_persist=False):
    """Serve ``model_path`` over HTTP until interrupted (single process).

    One process is the only writer of the model file and its journal (a
    second one on the same journal refuses to start); it serves predictions
    from memory in its event loop, applies deletions in a worker thread, and
    saves new model versions in one background thread. On shutdown
    (SIGTERM, Ctrl-C) it saves what is pending before it exits.

    Parameters
    ----------
    model_path : str or path-like
        The model file (see :class:`~skforget.serve.ForgetService`).
    host : str, default="127.0.0.1"
        Address to bind; loopback by default. Binding elsewhere without a
        token logs a warning.
    port : int, default=8000
        Port to bind.
    journal_path : str or path-like, default=None
        The SQLite journal; ``MODEL.journal`` when None.
    token : str, default=None
        Bearer token required by ``/forget`` and ``/audit``; when None, the
        environment variable ``SKFORGET_SERVE_TOKEN`` is used if set.
    trusted : list of str, default=None
        Further types to trust when loading the model file.
    log_level : str, default="info"
        Logging level; "info" logs one line per request with its duration.
    sync_persist : bool, default=False
        Answer ``POST /forget`` only once the model file holds the deletion,
        as if every request asked ``?wait=persisted``. By default the receipt
        comes once the deletion is journaled and applied, and the file is
        rewritten in the background.

    Examples
    --------
    >>> from skforget.serve import serve
    >>> serve("model.skops", port=8000)  # doctest: +SKIP
    """
    import uvicorn

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("skforget.serve").setLevel(log_level.upper())
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token is None and not _is_loopback(host):
        logger.warning("binding %s without a token: anyone who reaches it can forget "
                       "records and read the audit log", host)
    service = ForgetService(model_path, journal_path=journal_path, trusted=trusted,
                            sync_persist=sync_persist)
    # A deletion's thread and the event loop take turns on the GIL; a thread
    # that gave it up (for a system call: each SQLite step, the fsync) waits
    # up to one switch interval to get it back. 0.2 ms instead of 5 keeps a
    # deletion's receipt quick under prediction load (measured: receipt p50
    # 45 -> 25 ms against 1 ms); with one thread running, nothing changes.
    sys.setswitchinterval(0.0002)
    try:
        health = service.health()
        logger.info("serving %s version %d (%d records, journal %s) on http://%s:%d",
                    health["model"], health["model_version"], health["n_records"],
                    service.journal.path, host, port)
        app = create_app(service, token=token)
        # What is alive now (modules, the loaded model) lives as long as the
        # server: keep it out of the cyclic collector, whose full passes over
        # it (~240,000 objects, ~140 ms measured) would stall every request
        # and deletion at once.
        gc.collect()
        gc.freeze()
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(),
                                access_log=False, log_config=None)
        uvicorn.Server(config).run()
    finally:
        service.close()
