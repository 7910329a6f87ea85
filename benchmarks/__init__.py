"""Benchmarks of mjasync against a naive client and a submit-only floor (``python -m benchmarks``).

Not part of the package: run from the repository root with the dev virtualenv. See README.md.
"""
