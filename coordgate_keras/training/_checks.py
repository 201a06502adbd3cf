"""The training package's argument checks, on the shared `utils.argument_validation`.

The trainer's call sites read `(name, value)`; these adapters keep that order
and leave the checks and the Keras message form to the shared module.
"""

from coordgate_keras.utils import argument_validation as av


def invalid(name, expected, received):
    """Returns a `ValueError` in Keras' message form (`received` is the text)."""
    return av.invalid_value(None, name, expected, received)


def positive_int(name, value):
    return av.positive_int(value, name)


def non_negative_int(name, value):
    return av.non_negative_int(value, name)


def non_negative_float(name, value, strict=False):
    return av.number(value, name, minimum=0.0, min_inclusive=not strict)


def one_of(name, value, choices):
    return av.choice(value, name, choices)
