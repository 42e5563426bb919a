"""The WSGI entry point: `gunicorn -c python:feereg.gunicorn_conf` (see `feereg serve`)."""
import os
import sys

from . import create_app
from .services.snapshot import warm_in_background

app = create_app()
_warmed_in = None


def warm() -> None:
    """Start building this process's comparison and quote snapshot, once per process."""
    global _warmed_in
    if _warmed_in != os.getpid():
        _warmed_in = os.getpid()
        warm_in_background(app)


# Under feereg's gunicorn settings each worker starts its warm-up once it is up
# (post_worker_init): started here, the thread would run in gunicorn's master whenever
# the app is preloaded, and threads do not survive fork. Under any other server: now.
if "feereg.gunicorn_conf" not in sys.modules:
    warm()
