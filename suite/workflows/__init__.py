"""What the commands do: train a config (one run or a sweep), evaluate, predict, visualise,
export, compare runs, record results."""
