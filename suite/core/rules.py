"""The rules a config value must pass, and ``Setting``: a default, its rule and its help.

A rule is a callable ``value -> message or None``; the message completes
``<file>: <dotted key>: ...``. Registered functions (``suite.core.registry``) name their
rules as annotations; ``suite.config`` lists the other settings as ``Setting``s.
"""

import math
from typing import NamedTuple

from suite.core.registry import did_you_mean

REQUIRED = object()  # a Setting default that the config must give


class Setting(NamedTuple):
    default: object
    rule: object
    help: str


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_finite_number(v):
    """A number JSON or YAML can hold that is neither a bool nor inf/NaN (nor an integer
    too large for a float)."""
    try:
        return is_number(v) and math.isfinite(float(v))
    except OverflowError:
        return False


def fits_default(value, default):
    """Whether a model knob's value is of its default's kind: a bool for a bool, a whole
    number for an int, a finite number for a float, a string for a string (a default of
    None or a tuple says nothing; the builders check ranges and choices)."""
    if default is None or isinstance(default, tuple):
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return is_int(value)
    if isinstance(default, float):
        return is_finite_number(value)
    return isinstance(value, type(default))


KINDS = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Rule:
    """``ok(value)`` must hold; else "must be <text>, got <value>"."""

    def __init__(self, ok, text, show=repr):
        self.ok, self.text, self.show = ok, text, show

    def __call__(self, value):
        return None if self.ok(value) else f"must be {self.text}, got {self.show(value)}"


def count(value):
    """An integer >= 1 (epochs, batch sizes)."""
    if not is_int(value):
        return f"must be an integer, got {value!r}"
    return None if value >= 1 else f"must be >= 1, got {value}"


count.text = "an integer >= 1"


def choice(*options):
    """One of ``options`` (a callable returning them, for a registry's names), with a did-you-mean."""

    def check(value):
        allowed = options[0]() if len(options) == 1 and callable(options[0]) else options
        if value in allowed and type(value) in {type(c) for c in allowed}:
            return None
        return f"unknown value {value!r}{did_you_mean(value, allowed)}; choose from {', '.join(map(str, allowed))}"

    return check


FLAG = Rule(lambda v: isinstance(v, bool), "true or false")
POSITIVE = Rule(lambda v: is_number(v) and v > 0, "a number > 0")
NON_NEGATIVE = Rule(lambda v: is_number(v) and v >= 0, "a number >= 0")
UNIT = Rule(lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")
FRACTION = Rule(lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]")
OPTIONAL_POSITIVE = Rule(lambda v: v is None or (is_number(v) and v > 0), "null or a number > 0")
OPTIONAL_COUNT = Rule(lambda v: v is None or (is_int(v) and v >= 1), "null or an integer >= 1")
SEED = Rule(lambda v: is_int(v) and v >= 0, "an integer >= 0")
TEXT = Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
OPTIONAL_TEXT = Rule(lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "a non-empty string")
MAPPING = Rule(lambda v: isinstance(v, dict), "a mapping of the model's knobs", show=lambda v: type(v).__name__)
AUTO_OR_COUNT = Rule(lambda v: v == "auto" or (is_int(v) and v >= 1), "auto or an integer >= 1")
NAMES = Rule(lambda v: isinstance(v, list) and all(isinstance(n, str) and n.strip() for n in v),
             "a list of names")
CLASSES = Rule(lambda v: v is None or (isinstance(v, list) and len(v) >= 2 and len(set(v)) == len(v)
                                       and all(isinstance(n, str) for n in v)),
               "null or a list of two or more distinct class names")
MILESTONES = Rule(lambda v: isinstance(v, list) and all(is_int(m) and m >= 1 for m in v) and v == sorted(set(v)),
                  "a sorted list of distinct epochs >= 1")
PATTERN_SCALES = Rule(lambda v: isinstance(v, dict) and all(isinstance(k, str) and k.strip() and is_finite_number(x)
                                                            and x > 0 for k, x in v.items()),
                      "a mapping of variable-name patterns to numbers > 0")
PATTERN_EPOCHS = Rule(lambda v: isinstance(v, dict) and all(isinstance(k, str) and k.strip() and is_int(x) and x >= 1
                                                            for k, x in v.items()),
                      "a mapping of variable-name patterns to epochs >= 1")
