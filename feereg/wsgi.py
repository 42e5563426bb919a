"""The WSGI entry point for gunicorn: `gunicorn feereg.wsgi:app`."""
from . import create_app

app = create_app()
