"""A grid file expands into runs and tasks in dependency order; a bad grid is an error naming file, line and fix."""
from __future__ import annotations

import pytest

from bgeq_utils.sweep import GridError, load_grid


def test_two_models_by_two_notebooks_expand_into_runs_with_01_first_and_09_last(write_grid):
    g = load_grid(write_grid("""
        name: t
        models: [default, {model: bge-large, weights: random}]
        notebooks: [02_fp16_bf16, 03]          # a unique prefix names a notebook
        parameters: {max_docs: 10, batch_sizes: [2, 4], seq_lens: [16], device: cpu}
        per_notebook:
          02_fp16_bf16: {methods_to_run: [fp32, fp16]}
    """))
    assert g.sweep_run == "sweep-t" and g.runs == ["sweep-t-default", "sweep-t-bge-large-random"]
    ids = [t.id for t in g.tasks]
    assert ids == [f"{run}/{nb}" for run in g.runs for nb in ("01_baseline_fp32", "02_fp16_bf16", "03_int8_dynamic")] \
        + ["sweep-t/09_comparison"]
    first, fp16, int8 = g.tasks[3:6]
    assert first.after == () and fp16.after == int8.after == ("sweep-t-bge-large-random/01_baseline_fp32",)
    assert first.parameters == {"model": "bge-large", "weights": "random", "max_docs": 10, "batch_sizes": [2, 4],
                                "seq_lens": [16], "device": "cpu", "run": "sweep-t-bge-large-random"}
    assert fp16.parameters["methods_to_run"] == ["fp32", "fp16"] and "methods_to_run" not in int8.parameters
    assert all(t.bench for t in g.tasks[:-1])
    report = g.tasks[-1]
    assert not report.bench and set(report.after) == set(ids[:-1])
    assert report.parameters == {"device": "cpu", "batch_size": 4, "seq_len": 16, "extra_result_dirs": [],
                                 "runs": g.runs, "run": "sweep-t"}
    assert len({t.digest() for t in g.tasks}) == len(g.tasks)


def test_shards_run_before_any_timing_and_shared_timing_needs_no_bench(write_grid):
    g = load_grid(write_grid("""
        models: [default, {model: bge-large, weights: random, label: big}]
        notebooks: [02_fp16_bf16]
        shard_size: 8
    """, name="shards.yaml"))
    shards = [t for t in g.tasks if t.kind == "shards"]
    assert [t.id for t in g.tasks[:2]] == [t.id for t in shards] == ["sweep-shards-default/reference-shards",
                                                                     "sweep-shards-big/reference-shards"]
    assert not any(t.bench for t in shards) and shards[1].parameters["weights"] == "random"
    for t in g.tasks:
        if t.notebook == "01_baseline_fp32":       # exclusive timing: no notebook times while shards encode
            assert set(t.after) == {s.id for s in shards}
    shared = load_grid(write_grid("models: [default]\nnotebooks: [02]\ntiming: shared\nreport: false\n"))
    assert [t.notebook for t in shared.tasks] == ["01_baseline_fp32", "02_fp16_bf16"]
    assert not any(t.bench for t in shared.tasks)


def test_the_committed_example_and_profile_grids(write_grid):
    g = load_grid("example")                       # params/sweeps/example.yaml
    assert g.runs == ["sweep-example-default", "sweep-example-bge-large-random"] and len(g.tasks) == 7
    assert g.tasks[0].parameters["batch_sizes"] == [8]          # from the default profile
    assert g.tasks[3].parameters["weights"] == "random"         # the models axis overrides the profile's model
    make_run = load_grid(write_grid("name: make\nprofiles: [default, bge-large-random]\n"))
    assert make_run.runs == ["sweep-make-default", "sweep-make-bge-large-random"]
    assert "05_int8_qat" in {t.notebook for t in make_run.tasks if t.run == "sweep-make-default"}
    assert "05_int8_qat" not in {t.notebook for t in make_run.tasks if t.run == "sweep-make-bge-large-random"}


@pytest.mark.parametrize("text, message", [
    ("name: x\nmodel: [default]\n", r"grid.yaml line 2: unknown key 'model' \(did you mean 'models'\?\)"),
    ("models: [default\n", r"grid.yaml line 2, column 1: not valid YAML"),
    ("- default\n", r"grid.yaml: a grid is a mapping with keys name, profiles, models"),
    ("models: [default]\n", r"grid.yaml: the grid names no notebooks and no profile; add notebooks"),
    ("models: [default]\nnotebooks: [02]\nparameters:\n  max_doc: 3\n",
     r"grid.yaml line 4: 'max_doc' is not a parameter of any notebook of this sweep .*\(did you mean 'max_docs'\?\)"),
    ("models: [default]\nnotebooks: [99_nope]\n", r"line 2: notebook '99_nope' is not in notebooks/; use one of"),
    ("models: [default]\nnotebooks: [02, 09]\n", r"line 2: 09_comparison is not a notebook of a run; remove it"),
    ("models: [default]\nnotebooks: [02]\nparameters:\n  run: mine\n", r"line 4: 'run' is set by the sweep"),
    ("models: [default]\nnotebooks: [02]\nparameters:\n  model: x\n", r"line 4: 'model' is set by the grid's 'models'"),
    ("models:\n  - default\n  - {model: bge-large, weights: randm}\n", r"line 3: weights 'randm' is not one of"),
    ("models: [default]\nweights: [pretrained, random]\nnotebooks: [02]\n",
     r"model 'default' with weights: random has no architecture preset; use one of \['bge-large'\]"),
    ("models:\n  - default\n  - ./no/such/folder\nnotebooks: [02]\n",
     r"line 3: model folder './no/such/folder' does not exist"),
    ("models: [default, default]\nnotebooks: [02]\n", r"line 1: two points of the grid share the run name "
                                                       r"'sweep-grid-default'; give the models distinct labels"),
    ("models: [default]\nnotebooks: [02]\ntiming: fast\n", r"line 3: timing 'fast' is not one of"),
    ("models: [default]\nnotebooks: [02]\nper_notebook:\n  03_int8_dynamic: {weight_types: [QInt8]}\n",
     r"line 4: 03_int8_dynamic is not a notebook of this sweep"),
    ("models: [default]\nnotebooks: [02]\nper_notebook:\n  02_fp16_bf16: {weight_types: [QInt8]}\n",
     r"line 4: 'weight_types' is not a parameter of 02_fp16_bf16"),
    ("profiles: [nope]\n", r"line 1: profile 'nope': no parameter profile 'nope'"),
    ("models: [default]\nnotebooks: [02]\ndevices: [gpu]\n", r"line 3: device 'gpu' is not auto, cpu, cuda"),
    ("models: [default]\nnotebooks: [02]\nshard_size: 0\n", r"line 3: shard_size=0 is not a number >= 1"),
])
def test_a_bad_grid_names_the_file_the_line_and_the_fix(write_grid, text, message):
    with pytest.raises(GridError, match=message):
        load_grid(write_grid(text))


def test_an_unknown_grid_lists_the_committed_ones():
    with pytest.raises(FileNotFoundError, match=r"no grid file 'nope'; give a path, or one of \['example'\]"):
        load_grid("nope")
