"""Config, data, runtime and reporting code shared by train.py and evaluate.py."""
