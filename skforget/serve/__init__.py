"""A scoring service that honours deletion requests: ``python -m skforget serve``.

:class:`ForgetService` keeps a model file, its record ids and a durable SQLite
journal of deletion requests consistent through crashes; :func:`create_app`
puts it behind HTTP (FastAPI), and :func:`serve` runs that with uvicorn. The
HTTP layer needs the ``serve`` extra (``pip install 'skforget[serve]'``); the
service itself needs only skops (the ``io`` extra).

Routes: ``POST /predict``, ``POST /forget``, ``GET /audit``, ``GET /health``.
See ``docs/serving.rst``.
"""

from skforget.serve._app import create_app
from skforget.serve._server import TOKEN_ENV, serve
from skforget.serve._service import FAULT_ENV, ForgetService, ServiceError

__all__ = ["FAULT_ENV", "TOKEN_ENV", "ForgetService", "ServiceError", "create_app", "serve"]
