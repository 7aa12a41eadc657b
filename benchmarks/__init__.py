"""Benchmarks of commentsvc: load under gunicorn, and the widget's size and render time."""
