"""``KEY=VALUE`` command-line items (``--set``, ``--param``), each value read as YAML."""

import yaml

from suite.core.errors import UserError


def parse_items(items, flag, form="KEY=VALUE"):
    """``[(key, value), ...]`` from ``["a.b=1", "c=[1, 2]", ...]``: ``0.1``, ``true`` and
    ``[1, 2]`` become a float, a bool and a list; an empty value is None. A malformed
    item raises UserError naming ``flag`` and the item."""
    pairs = []
    for item in items or ():
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{flag} {item}: expected {form}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise UserError(f"{flag} {key}: cannot parse value {text!r} ({problem})") from None
        pairs.append((key.strip(), value))
    return pairs
