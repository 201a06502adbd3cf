"""Shared plumbing: argument validation, atomic writes, quiet TensorFlow start-up.

Imports nothing else of the package, so every subpackage (`layers` included) may
import it.
"""
