"""Sweeps beyond one machine: a grid of models x data sets x devices x notebooks, one papermill task per notebook
run, on a Dask cluster (a local one by default). ``bgeq sweep GRID`` or ``python -m bgeq_utils.sweep GRID``.

grid: the grid file -> runs and tasks; tasks: one notebook in a subprocess; cluster: where it runs and the
``bench`` resource that keeps timing apart; schedule: submit, record, re-run only what is not done; manifest:
the record of a sweep; shards: a large corpus encoded in shards on the workers, merged in order.
"""
from bgeq_utils.sweep.grid import Grid, GridError, Task, load_grid
from bgeq_utils.sweep.schedule import run_sweep, summary

__all__ = ["Grid", "GridError", "Task", "load_grid", "run_sweep", "summary"]
