"""The WSGI entry point: `gunicorn -c python:feereg.gunicorn_conf` (see `feereg serve`)."""
import gc
import logging
import os
import sys

from . import create_app
from .services.snapshot import warm_in_background

app = create_app()
_warmed_in = None


def warm() -> None:
    """Start building this process's comparison and quote snapshot and loading its search
    columns, once per process."""
    global _warmed_in
    if _warmed_in != os.getpid():
        _warmed_in = os.getpid()
        warm_in_background(app, then=_load_search_and_settle)


def _load_search_and_settle() -> None:
    """Load the search columns too, then take what was loaded out of the garbage
    collector's sight: hundreds of thousands of long-lived objects (at a million items)
    that every full collection would walk again, a pause of 150-250 ms in the middle of
    some request. Freed objects are still freed by reference counting; a cycle among the
    objects of a request in flight at that moment is kept for good (a few kilobytes, once)."""
    from .extensions import db
    from .search import get_backend
    from .search.query import ParsedQuery

    try:  # a query of no terms: nothing to match, the columns loaded all the same
        get_backend(app).search(ParsedQuery([]), {}, "relevance", 1, 1)
    except Exception:  # the index may be missing: the search page says so
        logging.getLogger(__name__).warning("search warm-up failed", exc_info=True)
    finally:
        db.session.remove()
    gc.collect()
    gc.freeze()


# Under feereg's gunicorn settings each worker starts its warm-up once it is up
# (post_worker_init): started here, the thread would run in gunicorn's master whenever
# the app is preloaded, and threads do not survive fork. Under any other server: now.
if "feereg.gunicorn_conf" not in sys.modules:
    warm()
