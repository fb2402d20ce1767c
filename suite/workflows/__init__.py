"""What the commands do: train a config (one run; ``suite.api`` runs sweeps of them), evaluate,
predict, visualise, export, compare runs, record results. Each ``run(options)`` returns the
command's exit status as a ``suite.core.outcome.Outcome`` (``suite.api`` reads what it carries)."""
