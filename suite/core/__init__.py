"""Plumbing every layer uses: errors, files written atomically, locks, folders, registries,
value rules, the CPU and a quiet start-up."""
