# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
study_dir = "data/studies/flags_latency"   # a study directory (wqkit study run STUDY.toml --out DIR)

# %% [markdown]
# # A study: effects with their uncertainty
#
# Every point of the study's grid ran in several boots of its own, in blocks
# randomised so that drift of the host falls on every level alike. Each run
# is reduced to its own statistics (p50/p90/p99; a task graph's makespan,
# waits and run times); each boot to the mean log of its runs'; a level's
# figure is the geometric mean over its boots with a t interval over boots,
# and its ratio to the baseline level with its interval, a t test and a rank
# test on boot-level values. Every comparison's p-value is adjusted for the
# study's many comparisons (Holm). The run-order plots show drift as a
# trend shared by all levels.

# %%
from wqkit.notebook import show_study

show_study(study_dir)
