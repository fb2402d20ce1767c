"""Name -> function registries: the models, the config's optimizers, schedules and
augmentations, and evaluate.py's reports. One mechanism, one "did you mean" hint.

A function registers itself with a decorator, and its signature is the documentation
the config checks against. Positional
parameters are what the suite passes in (the learning rate, the steps per epoch, a
seed); keyword-only parameters are the config keys the function takes, with their
defaults, and each annotation is the ``suite.core.rules`` rule a value must pass::

    @SCHEDULES.register
    def step(lr, steps_per_epoch, epochs, *, factor: rules.FRACTION = 0.5, every: rules.count = 5):
        ...

So a new schedule, optimizer or augmentation is one function; ``suite.config`` takes
its keys, defaults and rules from here.
"""

import difflib
import inspect

from suite.core.errors import UserError


def did_you_mean(name, candidates, cutoff=0.6):
    """`` (did you mean 'x'?)`` for the candidate closest to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry:
    def __init__(self, kind, sort=False):
        self.kind = kind        # "model", "optimizer", ...: used in error messages
        self.sort = sort        # names() sorted, or in the order they were registered
        self._entries = {}      # name -> (function, check)

    def register(self, fn=None, *, name=None, check=None):
        """Register ``fn`` under its name (or ``name``). ``check(params, cfg)``, if given, is a
        cross-key rule: it returns ``(key, message)`` for a config it refuses, else None."""

        def wrap(f):
            key = name or f.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = (f, check)
            return f

        return wrap(fn) if fn is not None else wrap

    def names(self):
        """The registered names, sorted or in the order they were registered."""
        return sorted(self._entries) if self.sort else list(self._entries)

    def functions(self):
        """The registered functions, in the order of ``names()``."""
        return [self._entries[n][0] for n in self.names()]

    def get(self, name):
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                            f"available: {', '.join(self.names())}")
        return self._entries[name][0]

    def check_of(self, name):
        return self._entries[name][1]

    def params(self, name):
        """``{key: Parameter}`` of the config keys ``name`` takes (its keyword-only parameters)."""
        return {p.name: p for p in inspect.signature(self.get(name)).parameters.values() if p.kind == p.KEYWORD_ONLY}

    def all_params(self):
        """Every config key of every entry, the first entry's Parameter for a key that several share."""
        keys = {}
        for name in self._entries:
            for key, p in self.params(name).items():
                keys.setdefault(key, p)
        return keys

    def call(self, name, context, settings):
        """``name``'s function with the positional ``context`` and those of the ``settings``
        (a config section) that it takes."""
        takes = self.params(name)
        return self.get(name)(*context, **{k: v for k, v in settings.items() if k in takes})
