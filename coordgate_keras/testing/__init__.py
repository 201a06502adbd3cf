"""Test helpers for code built on coordgate-keras (used by the package's own tests)."""

from coordgate_keras.testing.layer_test import run_layer_test

__all__ = ["run_layer_test"]
