"""The comparison table and the shareable report, on constructed Results (no model needed)."""
from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser

import pandas as pd
import pytest

from bgeq_utils import compare, paths, report, results
from bgeq_utils.results import Result

BASE_QUALITY = {"ndcg@10": 0.80, "recall@10": 0.70, "recall@100": 1.0, "mrr@10": 0.90,
                "pearson": 0.65, "spearman": 0.50}
MINI = {"id": "sentence-transformers/all-MiniLM-L6-v2", "parameters": 22_713_216, "weights": "pretrained"}
BGE = {"id": "BAAI/bge-large-en-v1.5", "parameters": 335_141_888, "weights": "random", "preset": "bge-large"}
MADE_UP = "zz-made-up-int8-method"          # registered nowhere: the comparison must still handle it


def res(label, precision, tps, disk, mem, kept=None, cos=None, run="small", model=MINI, device="cpu",
        status="ok", reason=""):
    dev = {"kind": device, "cpu_model": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2", "avx512_vnni"]}
    if device == "cuda":
        dev["gpu_name"] = "Test GPU"
    r = Result(run=run, method=label, precision=precision, library="test", status=status, reason=reason,
               model=dict(model), device=dev, dataset={"dataset": "lee", "documents": 50},
               packages={"torch": "0.0-test"})
    if status != "ok":
        return r
    r.size = {"disk_bytes": disk}
    key = "peak_cuda_bytes" if device == "cuda" else "inference_peak_over_baseline_bytes"
    r.memory = {key: mem, "model_rss_bytes": mem * 0.8, "cuda_model_bytes": mem * 0.8}
    r.speed = [{"batch_size": b, "seq_len": 128, "tokens_per_s": tps * (b / 32) ** 0.2,
                "latency_ms_p50": 10.0} for b in (1, 32)]
    if kept is not None and model.get("weights") != "random":
        r.quality = {k: v * kept for k, v in BASE_QUALITY.items()}
    if cos is not None:
        r.fidelity = {"cos_mean": cos, "cos_min": cos - 0.002, "l2_mean": (2 - 2 * cos) ** 0.5,
                      "top10_overlap": 0.95, "sim_pearson": cos,
                      "cosines": [min(1.0, cos + d) for d in (-0.002, -0.001, 0.0, 0.001, 0.002)]}
    return r


@pytest.fixture
def result_set():
    return [
        res("fp32", "fp32", 1000, 9.1e7, 4.3e8, 1.0, 1.0),
        res("fp16-x", "fp16", 700, 4.6e7, 3.0e8, 1.0, 0.99995),
        res(MADE_UP, "int8", 2100, 3.0e7, 2.2e8, 0.994, 0.996),
        res("slow-int8", "int8", 800, 3.5e7, 2.5e8, 0.999, 0.999),
        res("four-bit", "nf4", 0, 0, 0, status="skipped", reason="bitsandbytes needs a CUDA GPU"),
        res("fp32", "fp32", 100, 1.342e9, 1.45e9, cos=1.0, run="big", model=BGE),
        res(MADE_UP, "int8", 260, 3.7e8, 5.0e8, cos=0.995, run="big", model=BGE),
        res("fp32", "fp32", 9000, 1.342e9, 1.40e9, cos=1.0, run="gpu", model=BGE, device="cuda"),
        res("fp16-x", "fp16", 16000, 0.671e9, 0.75e9, cos=0.99999, run="gpu", model=BGE, device="cuda"),
    ]


def test_table_handles_any_method_name_by_its_precision(result_set):
    df = compare.table(result_set)
    row = df[(df["method"] == MADE_UP) & (df["run"] == "small")].iloc[0]
    assert row["precision"] == "int8"
    assert row["cpu x fp32"] == pytest.approx(2.1)
    assert row["size x fp32"] == pytest.approx(3.0e7 / 9.1e7)
    # recall@100 on 50 documents cannot move: left out of the mean
    assert "recall@100 %" not in df.columns and row["quality %"] == pytest.approx(99.4)
    assert row["best use"].startswith("CPU inference (2.10x FP32")
    skipped = df[df["method"] == "four-bit"].iloc[0]
    assert skipped["status"] == "skipped" and "CUDA" in skipped["reason"] and "not measured" in skipped["best use"]
    assert df[(df["method"] == "fp32") & (df["run"] == "small")].iloc[0]["best use"].startswith("reference")
    slow = df[df["method"] == "slow-int8"].iloc[0]
    assert "memory-constrained" in slow["best use"] and "but 0.80x FP32 speed" in slow["best use"]

    byp = compare.by_precision(result_set)
    int8 = byp[(byp["run"] == "small") & (byp["precision"] == "int8")].iloc[0]
    assert int8["representative"] == MADE_UP and int8["methods ok/total"] == "2/2"
    assert "fastest" in byp.attrs["rule"]
    best_q = compare.by_precision(result_set, rule="best-quality")
    assert best_q[(best_q["run"] == "small") & (best_q["precision"] == "int8")].iloc[0]["representative"] == "slow-int8"
    gpu = byp[(byp["run"] == "gpu") & (byp["precision"] == "fp16")].iloc[0]
    assert gpu["speed GPU x fp32"] == pytest.approx(16000 / 9000) and pd.isna(gpu["speed CPU x fp32"])
    nf4 = byp[byp["precision"] == "nf4"].iloc[0]
    assert "not measured" in nf4["best use"] and "CUDA" in nf4["best use"]


def test_load_resolves_runs_and_folders_from_the_repo_root(result_set, tmp_path, monkeypatch):
    for r in result_set:
        results.save(r)                              # outputs/<run>/results under BGEQ_OUTPUTS
    folder = tmp_path / "gpu"
    results.save(res("fp32", "fp32", 5000, 1.3e9, 1.4e9, cos=1.0, run="gpu", model=BGE, device="cuda"), folder)
    monkeypatch.chdir(tmp_path / "gpu")             # the CWD must not matter
    rs, msgs = compare.load(["small", "big", "missing-run"], [str(folder), "outputs/no-such-folder"])
    assert len(rs) == sum(r.run in ("small", "big") for r in result_set) + 1
    assert any("missing-run" in m and "no results folder" in m for m in msgs)
    assert any(str(paths.ROOT / "outputs/no-such-folder") in m for m in msgs)
    (folder / "broken.json").write_text("{not json")
    rs2, msgs2 = compare.load([], [str(folder)])
    assert len(rs2) == 1 and any("broken.json" in m for m in msgs2)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        elif tag == "table":
            self.tables += 1

    def handle_data(self, data):
        self.text.append(data)


def test_report_files_render_and_parse(result_set):
    from PIL import Image
    cmp = report.compute(result_set, ["constructed set"], device="cpu")
    figs = report.make_figures(cmp, "report-test")
    assert {"quality_vs_speed_cpu", "quality_vs_speed_cuda", "size_memory", "fidelity_cosines"} == set(figs)
    assert set(cmp.recommendations) == {"cpu", "cuda"} and cmp.recommendations["cuda"].choice == "fp16-x"
    files = report.export(cmp, "report-test", figs)
    assert files["html"] == paths.run_dir("report-test") / "report.html"
    page = files["html"].read_text()
    p = _Collect()
    p.feed(page)
    assert p.tables >= 4
    assert len(p.imgs) == len(figs)
    for img in p.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        raw = base64.b64decode(img["src"].split(",", 1)[1])
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
    text = " ".join(p.text)
    assert MADE_UP in text and "Claims ledger" in text and "What would change the answer" in text
    assert "Test CPU" in text                       # the environment is in the report
    assert "http://" not in page and "https://" not in page and "<script" not in page   # self-contained
    csv = pd.read_csv(files["csv"])
    assert MADE_UP in set(csv["method"]) and len(csv) == len(result_set)
    assert csv.loc[csv["device"] == "cuda", "gpu x fp32"].max() == pytest.approx(16000 / 9000)
    md = files["md"].read_text()
    assert md.count("\n|---") >= 3 and f"| {MADE_UP} |" in md
    ledger = pd.read_csv(files["ledger_csv"])
    assert {"holds", "fails", "not measured"} <= set(ledger["verdict"])


def test_report_with_no_results_says_so():
    cmp, files = report.build(["no-such-run"], [], out_run="report-empty")
    page = files["html"].read_text()
    assert "No results were found" in page and "no-such-run" in page
    assert files["md"].is_file() and files["csv"].is_file()
    assert not [k for k in files if k.startswith("figure:")]


def test_markdown_table_escapes_and_blanks():
    md = report.markdown_table(pd.DataFrame({"a": ["x|y", None], "b": [1.5, float("nan")]}))
    assert md.splitlines()[2] == "| x\\|y | 1.5 |" and md.splitlines()[3] == "|  |  |"
    json.dumps(md)
