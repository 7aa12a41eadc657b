"""The ceiling of the serving stack: the smallest Flask app, answering a fixed small JSON body.

``benchmarks.load`` serves it with the same gunicorn settings as commentsvc
(``gunicorn -c gunicorn.conf.py benchmarks.ceiling_app:app``) and loads it with
the same wrk settings, so each workload's requests per second can be read as a share of
what Flask under gunicorn does on this machine when the application does nothing at all.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/")
def index() -> Response:
    """A fixed, small JSON answer: no database, no logging, no middleware."""
    return jsonify(status="ok")
