"""Module experiments: building their modules (kmod), running them (runner), task graphs and fuzzing.

What an experiment *is* (its declaration) lives in :mod:`wqkit.runs.spec`.
"""
