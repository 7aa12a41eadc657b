"""Tests of the use cases, called directly."""
