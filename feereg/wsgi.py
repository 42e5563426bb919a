"""The WSGI entry point for gunicorn: `gunicorn feereg.wsgi:app`."""
from . import create_app
from .services.snapshot import warm_in_background

app = create_app()
# Each worker holds the comparisons' and quotes' in-memory snapshot: start building it now.
warm_in_background(app)
