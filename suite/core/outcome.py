"""What a workflow returns: its exit status, carrying what it made.

``Outcome(0, folder=out)`` is the int 0 wherever an exit status is expected
(``run_cli``, ``sys.exit``), and ``suite.api`` reads what it carries: a report folder, a
run's model, predictions.
"""


class Outcome(int):
    """An exit status (an int) with keyword facts as attributes; a fact not given reads None."""

    def __new__(cls, code, **facts):
        self = super().__new__(cls, code)
        self.__dict__.update(facts)
        return self

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __repr__(self):
        return f"Outcome({int(self)}, {', '.join(sorted(self.__dict__))})"
