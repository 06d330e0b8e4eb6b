"""The JSON API and the C2SP read paths. marshmallow lives here."""

from __future__ import annotations

from flask import Flask

from api import coverage, downloads, errors, export, feed, openapi, records, stats, submissions, tiles, v1


def init_app(app: Flask) -> None:
    errors.init_app(app)
    app.extensions["feed_summaries"] = feed.init_app(int(app.config["FEED_ROW_CACHE"]))
    app.register_blueprint(tiles.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(v1.health_bp)
    app.register_blueprint(submissions.bp)
    app.register_blueprint(records.bp)
    app.register_blueprint(feed.bp)
    app.register_blueprint(export.bp)
    app.register_blueprint(downloads.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(stats.bp)
    app.register_blueprint(coverage.bp)
