"""Browser tests: real Chromium driven by Playwright against a real gunicorn."""
