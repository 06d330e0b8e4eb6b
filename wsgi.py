"""The WSGI entry point for gunicorn: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from app import create_app, freeze_start_up_objects

app = create_app()
freeze_start_up_objects()
