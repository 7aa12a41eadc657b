"""Helpers the test suites, benchmarks and scripts share."""
