"""A sweep's grid file (YAML) -> the runs it measures and one task per notebook run, with their order.

A grid crosses models (and their weights), data sets and devices, over the notebooks of a profile or a list
of notebooks, with parameter overrides. Each point of the cross is one **run** (``sweep-<name>-<point>``):
its notebooks write their Results there, so the comparison reads each model like for like (it groups by run).
In each run ``01_baseline_fp32`` goes first (it saves the FP32 embeddings the later notebooks reuse); the
comparison ``09_comparison`` goes last, once, over every run of the sweep, into ``outputs/sweep-<name>/``.

Errors name the file, the line and the fix, as :func:`bgeq_utils.runs.profile_files.load_profile` does for profiles.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bgeq_utils.core import env, paths, results
from bgeq_utils.inputs import models
from bgeq_utils.runs import profiles as profile_files

GRID_KEYS = ("name", "profiles", "models", "weights", "datasets", "devices", "notebooks", "parameters",
             "per_notebook", "timing", "threads", "task_timeout", "report", "html", "shard_size")
MODEL_KEYS = ("model", "weights", "label")
WEIGHTS = ("pretrained", "random")
TIMING = ("exclusive", "shared")
FIRST = "01_baseline_fp32"
REPORT = "09_comparison"
#: parameters the sweep sets itself: the run (one per point), where outputs go, and the axes when given
SET_BY_SWEEP = {"run": "the sweep names each run sweep-<name>-<point>",
                "output_dir": "the sweep writes under the outputs folder (BGEQ_OUTPUTS, or --outputs)",
                "runs": "the sweep's comparison reads every run of the sweep"}
AXES = {"models": "model", "datasets": "dataset", "devices": "device"}
SHARDS = "reference-shards"


class GridError(ValueError):
    """A grid file that cannot be used: the message names the file, the line and the fix."""


@dataclass
class Task:
    """One unit of a sweep: a notebook executed with its parameters into its run (kind ``notebook``), or the
    FP32 reference embeddings of a run encoded in shards on the workers (kind ``shards``)."""
    id: str                                  # "<run>/<notebook>"
    run: str
    notebook: str                            # notebook stem, or "reference-shards"
    parameters: dict
    bench: bool                              # needs the host to itself while it times (Dask resource "bench")
    after: tuple = ()                        # ids of the tasks that must finish first
    kind: str = "notebook"

    @property
    def source(self) -> Path:
        return paths.NOTEBOOKS / f"{self.notebook}.ipynb"

    def digest(self) -> str:
        """What makes a finished task still valid: its notebook and its parameters."""
        return hashlib.sha1(results.canonical({"kind": self.kind, "notebook": self.notebook,
                                               "parameters": self.parameters}).encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {"id": self.id, "run": self.run, "notebook": self.notebook, "parameters": self.parameters,
                "bench": self.bench, "after": list(self.after), "kind": self.kind, "digest": self.digest()}


@dataclass
class Grid:
    name: str
    file: Path
    sweep_run: str                           # outputs/<sweep_run>/: the manifest and the comparison
    runs: list[str]
    tasks: list[Task]
    timing: str = "exclusive"
    threads: int | None = None               # threads of a timing task (None: the host's cores)
    task_timeout: float | None = None
    html: bool = True
    shard_size: int | None = None
    points: list[dict] = field(default_factory=list)


# --- reading the file, with line numbers ----------------------------------------------------------------
def _line_map(text: str) -> dict[tuple, int]:
    """1-based line of every key and list item, by its path from the top (("models", 1, "weights"), ...)."""
    out: dict[tuple, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                out[path + (i,)] = v.start_mark.line + 1
                walk(v, path + (i,))

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:
        pass
    return out


class _Reader:
    """Errors that point at the line of the offending key."""

    def __init__(self, file: Path, text: str):
        self.file, self.lines = file, _line_map(text)

    def error(self, path: tuple, problem: str, fix: str) -> GridError:
        line = None
        for n in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:n]))
            if line:
                break
        where = f"{self.file} line {line}" if line else str(self.file)
        return GridError(f"{where}: {problem}; {fix}")


def _suggest(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _as_list(r: _Reader, grid: dict, key: str, kind=str) -> list | None:
    if key not in grid or grid[key] is None:
        return None
    v = grid[key]
    v = [v] if isinstance(v, (str, int, float)) and not isinstance(v, bool) else v
    if not isinstance(v, list) or not v:
        raise r.error((key,), f"'{key}' must be a non-empty list, not {grid[key]!r}", f"e.g. {key}: [a, b]")
    for i, x in enumerate(v):
        if not isinstance(x, kind):
            raise r.error((key, i), f"'{key}' item {x!r} is a {type(x).__name__}", "write each item as a name")
    return list(v)


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text).rstrip("/").split("/")[-1]).strip("-.")
    return s or "x"


@lru_cache(maxsize=None)
def declared_parameters(notebook: str) -> frozenset:
    """The parameters a notebook declares in its ``parameters`` cell (as the runner reads them), read once."""
    return frozenset(profile_files.declared_parameters(paths.NOTEBOOKS / f"{notebook}.ipynb"))


def _notebook(r: _Reader, path: tuple, name) -> str:
    known = profile_files.known_notebooks()
    if isinstance(name, int) and not isinstance(name, bool):     # YAML reads 02 as the number 2
        name = f"{name:02d}"
    if name in known:
        return name
    hits = [n for n in known if n.startswith(str(name))]
    if len(hits) == 1:
        return hits[0]
    raise r.error(path, f"notebook {name!r} is {'ambiguous' if hits else 'not in notebooks/'}",
                  f"use one of {', '.join(known)}{_suggest(name, known)}")


# --- the grid ---------------------------------------------------------------------------------------------
def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; expand it into runs and tasks (nothing runs)."""
    file = Path(path)
    if not file.is_file():
        alt = paths.PARAMS / "sweeps" / f"{path}.yaml"
        if not alt.is_file():
            known = sorted(x.stem for x in (paths.PARAMS / "sweeps").glob("*.yaml"))
            raise FileNotFoundError(f"no grid file {str(path)!r}; give a path, or one of {known} "
                                    f"(in {paths.shown(paths.PARAMS / 'sweeps')})")
        file = alt
    text = file.read_text()
    r = _Reader(file, text)
    try:
        grid = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GridError(f"{file}{where}: not valid YAML ({getattr(e, 'problem', None) or e}); a grid is a mapping "
                        f"with keys {', '.join(GRID_KEYS)}") from None
    if not isinstance(grid, dict):
        raise GridError(f"{file}: a grid is a mapping with keys {', '.join(GRID_KEYS)}, not a "
                        f"{type(grid).__name__}")
    for k in grid:
        if k not in GRID_KEYS:
            raise r.error((k,), f"unknown key {k!r}{_suggest(k, GRID_KEYS)}", f"a grid has {', '.join(GRID_KEYS)}")

    name = grid.get("name", file.stem)
    try:
        sweep_run = paths.check_run_name(f"sweep-{name}")
    except ValueError:
        raise r.error(("name",), f"name {name!r} does not make a usable run name",
                      "use letters, digits, '.', '_' or '-'") from None

    settings = _settings(r, grid)
    profiles = _profiles(r, grid)
    models = _models(r, grid)
    datasets = _as_list(r, grid, "datasets")
    devices = _devices(r, grid)
    notebooks = _notebooks(r, grid, profiles)
    in_sweep = {FIRST} | set(notebooks if notebooks is not None else
                             [n for p in profiles for n in p["notebooks"] if n not in profile_files.REPORT_NOTEBOOKS])
    if settings["report"]:
        in_sweep.add(REPORT)
    params, per_nb = _overrides(r, grid, in_sweep)

    points = []
    for prof in profiles:
        for m in models or [None]:
            for ds in datasets or [None]:
                for dev in devices or [None]:
                    # the run name shows the models, and the other axes where they take several values
                    parts, axis = [], {}
                    if prof is not None and len(profiles) > 1:
                        parts.append(prof["name"])
                    if m is not None:
                        parts.append(m["label"])
                        axis |= {"model": m["model"], "weights": m["weights"]}
                    if ds is not None:
                        parts += [_slug(ds)] if len(datasets) > 1 else []
                        axis["dataset"] = ds
                    if dev is not None:
                        parts += [dev.replace(":", "")] if len(devices) > 1 else []
                        axis["device"] = dev
                    parts = parts or [prof["name"] if prof is not None else "run"]
                    points.append({"profile": prof, "axis": axis, "run": "-".join([sweep_run, *parts])})
    seen: dict[str, dict] = {}
    for p in points:
        if p["run"] in seen:
            raise r.error(("models",), f"two points of the grid share the run name {p['run']!r}",
                          "give the models distinct labels ({model: ..., label: ...})")
        try:
            paths.check_run_name(p["run"])
        except ValueError as e:
            raise r.error(("name",), str(e).split(";")[0], "shorten the name or the model labels") from None
        seen[p["run"]] = p

    tasks: list[Task] = []
    shard_tasks: list[Task] = []
    exclusive = settings["timing"] == "exclusive"
    for p in points:
        prof = p["profile"] or {"parameters": {}, "per_notebook": {}, "notebooks": []}
        nbs = notebooks if notebooks is not None else [n for n in prof["notebooks"] if n not in
                                                        profile_files.REPORT_NOTEBOOKS]
        nbs = [FIRST] + [n for n in nbs if n != FIRST]
        first_id = f"{p['run']}/{FIRST}"
        for nb in nbs:
            merged = profile_files.notebook_parameters((prof["parameters"], prof["per_notebook"].get(nb, {}), params,
                                                 per_nb.get(nb, {}), p["axis"], {"run": p["run"]}), nb)
            tasks.append(Task(f"{p['run']}/{nb}", p["run"], nb, merged, exclusive, () if nb == FIRST else (first_id,)))
        if settings["shard_size"]:
            # what 01 will load (the notebook's own defaults where the grid sets nothing): 01 reuses the file only
            # when its texts and model match, so a mismatch costs time, never a wrong figure
            first = tasks[-len(nbs)].parameters
            sp = {"model": "default", "weights": "pretrained", "dataset": "lee", "max_docs": None,
                  "max_queries": None}
            sp = {k: first.get(k, v) for k, v in sp.items()} | {"run": p["run"], "shard_size": settings["shard_size"]}
            shard_tasks.append(Task(f"{p['run']}/{SHARDS}", p["run"], SHARDS, sp, False, (), kind="shards"))
    # shard encoding fills every worker: with exclusive timing it runs before any notebook (no timing beside it),
    # else each run's 01 waits for its own shards only
    for t in tasks:
        if t.notebook == FIRST and shard_tasks:
            t.after = tuple(x.id for x in shard_tasks if exclusive or x.run == t.run)
    tasks = shard_tasks + tasks
    runs = list(seen)
    if settings["report"]:
        rp = {k: v for k, v in params.items() if k in declared_parameters(REPORT)}
        if devices and "device" not in per_nb.get(REPORT, {}):
            rp["device"] = devices[0]
        first = next(t for t in tasks if t.notebook == FIRST).parameters
        for key, src in (("batch_size", "batch_sizes"), ("seq_len", "seq_lens")):   # the cell the runs timed
            values = first.get(src)
            if isinstance(values, list) and values and all(isinstance(v, int) for v in values):
                rp[key] = max(values)
        rp = {**rp, "extra_result_dirs": [], **per_nb.get(REPORT, {}), "runs": runs, "run": sweep_run}
        tasks.append(Task(f"{sweep_run}/{REPORT}", sweep_run, REPORT, rp, False, tuple(t.id for t in tasks)))
    return Grid(name=str(name), file=file, sweep_run=sweep_run, runs=runs, tasks=tasks,
                timing=settings["timing"], threads=settings["threads"], task_timeout=settings["task_timeout"],
                html=settings["html"], shard_size=settings["shard_size"],
                points=[{"run": p["run"], "profile": (p["profile"] or {}).get("name"), **p["axis"]} for p in points])


def _settings(r: _Reader, grid: dict) -> dict:
    timing = grid.get("timing", "exclusive")
    if timing not in TIMING:
        raise r.error(("timing",), f"timing {timing!r} is not one of {TIMING}",
                      "exclusive: notebooks that time hold their host's `bench` resource (one at a time per host); "
                      "shared: they run beside other work (their speed is then not a fair timing)")
    out = {"timing": timing}
    for key, kinds, low, fix in (("threads", int, 1, "threads of a timing task, e.g. 8 (default: the host's cores)"),
                                 ("task_timeout", (int, float), 1, "seconds one notebook may run, e.g. 3600"),
                                 ("shard_size", int, 1, "texts per shard of the FP32 reference embeddings, "
                                                        "e.g. 20000 (default: none, 01 encodes them itself)")):
        v = grid.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, kinds) or v < low):
            raise r.error((key,), f"{key}={v!r} is not a number >= {low}", fix)
        out[key] = v
    for key, default in (("report", True), ("html", True)):
        v = grid.get(key, default)
        if not isinstance(v, bool):
            raise r.error((key,), f"{key}={v!r} is not true or false", f"write {key}: true or {key}: false")
        out[key] = v
    return out


def _profiles(r: _Reader, grid: dict) -> list:
    names = _as_list(r, grid, "profiles")
    if names is None:
        return [None]
    out = []
    for i, n in enumerate(names):
        try:
            out.append(profile_files.load_profile(n))
        except (profile_files.ProfileError, FileNotFoundError) as e:
            raise r.error(("profiles", i), f"profile {n!r}: {e}", "fix that profile or name another") from None
    if len({p["name"] for p in out}) < len(out):
        raise r.error(("profiles",), "a profile is listed twice", "list each profile once")
    return out


def _models(r: _Reader, grid: dict) -> list | None:
    weights = _as_list(r, grid, "weights")
    for i, w in enumerate(weights or []):
        if w not in WEIGHTS:
            raise r.error(("weights", i), f"weights {w!r} is not one of {WEIGHTS}", "use pretrained or random")
    if "models" not in grid:
        if weights:
            raise r.error(("weights",), "'weights' applies to the models of the grid, and there are none",
                          "add models: [...], or set weights in a profile")
        return None
    items = grid["models"]
    if not isinstance(items, list) or not items:
        raise r.error(("models",), f"'models' must be a non-empty list, not {items!r}",
                      "e.g. models: [default, {model: bge-large, weights: random}]")
    out = []
    for i, m in enumerate(items):
        if isinstance(m, str):
            for w in weights or ["pretrained"]:
                out.append({"model": m, "weights": w, "label": _slug(m) + ("-random" if w == "random" else ""),
                            "item": i})
            continue
        if not isinstance(m, dict) or "model" not in m:
            raise r.error(("models", i), f"model item {m!r} is neither a name nor a mapping with 'model'",
                          "write a name (default, bge-large, org/name, a folder) or {model: ..., weights: ..., "
                          "label: ...}")
        for k in m:
            if k not in MODEL_KEYS:
                raise r.error(("models", i, k), f"unknown model key {k!r}{_suggest(k, MODEL_KEYS)}",
                              f"a model item has {', '.join(MODEL_KEYS)}")
        w = m.get("weights", (weights or ["pretrained"])[0])
        if w not in WEIGHTS:
            raise r.error(("models", i, "weights"), f"weights {w!r} is not one of {WEIGHTS}",
                          "use pretrained or random")
        label = m.get("label") or (_slug(m["model"]) + ("-random" if w == "random" else ""))
        if _slug(label) != str(label):
            raise r.error(("models", i, "label"), f"label {label!r} is not usable in a run name",
                          "use letters, digits, '.', '_' or '-'")
        out.append({"model": str(m["model"]), "weights": w, "label": str(label), "item": i})
    for m in out:
        _check_model(r, ("models", m["item"]), m["model"], m["weights"])
    return out


def _check_model(r: _Reader, path: tuple, model: str, weights: str) -> None:
    """What can be known before any notebook runs: random weights need an architecture preset, and a folder must
    be a model folder (hub ids are checked where they load)."""
    if weights == "random" and model.lower() not in models.PRESET_ALIASES:
        raise r.error(path, f"model {model!r} with weights: random has no architecture preset",
                      f"use one of {sorted(models.PRESETS)}, or weights: pretrained")
    p = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not (p / "config.json").is_file():
        raise r.error(path, f"model folder {model!r} {'has no config.json' if p.is_dir() else 'does not exist'}",
                      "point to a folder saved by transformers or sentence-transformers (every worker must see it)")


def _devices(r: _Reader, grid: dict) -> list | None:
    devices = _as_list(r, grid, "devices")
    for i, d in enumerate(devices or []):
        try:
            if d.strip().lower() != "auto":
                env.check_device(d)
        except ValueError:
            raise r.error(("devices", i), f"device {d!r} is not auto, cpu, cuda or cuda:N", "e.g. devices: [cpu]") \
                from None
    return devices


def _notebooks(r: _Reader, grid: dict, profiles: list) -> list | None:
    names = _as_list(r, grid, "notebooks", (str, int))
    if names is None:
        if profiles == [None]:
            raise r.error((), "the grid names no notebooks and no profile",
                          f"add notebooks: [02_fp16_bf16, ...] or profiles: [default] ({FIRST} always runs first)")
        return None
    out = []
    for i, n in enumerate(names):
        nb = _notebook(r, ("notebooks", i), n)
        if nb in profile_files.REPORT_NOTEBOOKS:
            fix = ("the sweep runs it last over every run by itself (report: false turns it off)" if nb == REPORT
                   else "export from one run of the sweep afterwards: bgeq export METHOD --run <sweep run>")
            raise r.error(("notebooks", i), f"{nb} is not a notebook of a run", f"remove it: {fix}")
        if nb not in out:
            out.append(nb)
    return out


def _overrides(r: _Reader, grid: dict, in_sweep: set) -> tuple[dict, dict]:
    params = grid.get("parameters") or {}
    per_nb = grid.get("per_notebook") or {}
    for key, v in (("parameters", params), ("per_notebook", per_nb)):
        if not isinstance(v, dict):
            raise r.error((key,), f"'{key}' must be a mapping, not {v!r}",
                          "e.g. parameters: {max_docs: 20}" if key == "parameters" else
                          "e.g. per_notebook: {02_fp16_bf16: {methods_to_run: [fp32, fp16]}}")

    def check(path: tuple, mapping: dict, allowed: set, where: str):
        for k in mapping:
            if k in SET_BY_SWEEP:
                raise r.error(path + (k,), f"'{k}' is set by the sweep ({SET_BY_SWEEP[k]})", "remove it")
            for axis, param in AXES.items():
                if k == param and axis in grid:
                    raise r.error(path + (k,), f"'{k}' is set by the grid's '{axis}'", f"remove it, or '{axis}'")
            if k == "weights" and "models" in grid:
                raise r.error(path + (k,), "'weights' is set with the grid's models",
                              "give weights in models ({model: ..., weights: random}) or as weights: [...]")
            if k not in allowed:
                raise r.error(path + (k,), f"{k!r} is not a parameter of {where}{_suggest(k, allowed)}",
                              "check its spelling in the notebook's parameters cell")

    declared_any = set().union(*(declared_parameters(n) for n in in_sweep))
    check(("parameters",), params, declared_any, f"any notebook of this sweep ({', '.join(sorted(in_sweep))})")
    for nb_name, values in per_nb.items():
        nb = _notebook(r, ("per_notebook", nb_name), nb_name)
        if nb not in in_sweep:
            raise r.error(("per_notebook", nb_name), f"{nb} is not a notebook of this sweep",
                          f"remove its overrides, or add it to notebooks ({', '.join(sorted(in_sweep))})")
        if not isinstance(values, dict):
            raise r.error(("per_notebook", nb_name), f"the overrides of {nb_name} must be a mapping, not {values!r}",
                          "e.g. {methods_to_run: [fp32, fp16]}")
        check(("per_notebook", nb_name), values, set(declared_parameters(nb)), nb)
    return params, {_notebook(r, ("per_notebook", k), k): v for k, v in per_nb.items()}
