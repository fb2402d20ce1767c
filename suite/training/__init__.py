"""Optimizers, learning-rate schedules, devices and distribution, starting from trained weights."""
