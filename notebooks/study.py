# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# Every point of the study's grid ran several times, in an order randomised
# within blocks so that drift of the host falls on every level alike. Each
# run is reduced to its own p50/p90/p99; a level's figure is the mean over
# its runs, with a bootstrap interval that resamples runs (not samples),
# and its ratio to the baseline level with its interval and a Mann-Whitney
# test. The run-order plots show drift as a trend shared by all levels.

# %%
from wqkit.notebook import show_study

show_study(study_dir)
