"""Recommendation, report and loading, on constructed Results (no model needed)."""
from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser

import pandas as pd
import pytest

from bgeq_utils.compare import load, recommend, report, tabulate
from bgeq_utils.core import paths, results
from tests.factories import BGE, fp32, result

MADE_UP = "zz-made-up-int8-method"          # registered nowhere: the comparison must still handle it


@pytest.fixture
def result_set():
    return [
        fp32(run="small"),
        result("fp16", run="small", disk_mb=46, mem_mb=(180, 175, 185), speed=(0.3, 0.28, 0.32), loss_pct=0.0,
               cos=0.99995),
        result(MADE_UP, "int8", run="small", disk_mb=30, mem_mb=(160, 155, 165), speed=(2.1, 2.0, 2.2),
               loss_pct=0.5, cos=(0.996, 0.995, 0.997)),
        result("int8-dynamic-torch", run="small", disk_mb=35, mem_mb=(170, 168, 172), speed=(1.2, 1.1, 1.3),
               loss_pct=0.2, cos=(0.999, 0.998, 0.9995)),
        result("nf4-bnb", run="small", status="skipped", reason="bitsandbytes needs a CUDA GPU"),
        fp32(run="big", model=BGE, disk_mb=1342, mem_mb=1450, loss_pct=None),
        result(MADE_UP, "int8", run="big", model=BGE, disk_mb=370, mem_mb=(500, 495, 505), speed=(3.0, 2.9, 3.1),
               cos=(0.995, 0.994, 0.996)),
        fp32(run="gpu", model=BGE, device="cuda", disk_mb=1342, mem_mb=1400, loss_pct=None),
        result("fp16", run="gpu", model=BGE, device="cuda", disk_mb=671, mem_mb=750, speed=(1.8, 1.7, 1.9),
               cos=0.99999),
    ]


def test_recommendation_picks_the_fastest_within_quality_and_says_what_would_change(result_set):
    m = tabulate(result_set)
    small = [g for g in set(m.table["group"]) if "small" in g][0]
    rec = recommend.recommend(m, "cpu", group=small)
    assert rec.choice == MADE_UP and rec.decided
    assert "speed over eager PyTorch FP32" in rec.evidence and "[2.00, 2.20]" in rec.evidence[
        "speed over eager PyTorch FP32"]
    assert any("quality" in w or "memory" in w for w in rec.what_would_change)
    assert recommend.recommend(m, "cpu", group=small, objective="quality").choice in ("fp32", "fp16")
    strict = recommend.recommend(m, "cpu", group=small, min_speedup=5.0)
    assert strict.choice is None and strict.what_would_change and strict.rejected


def test_a_ranking_the_intervals_do_not_separate_is_undecided():
    rs = [fp32(), result("int8-dynamic-onnx", speed=(2.0, 1.8, 2.2), loss_pct=0.0, cos=0.999),
          result("bf16", speed=(1.9, 1.7, 2.1), loss_pct=0.0, cos=0.9999)]
    rec = recommend.recommend(tabulate(rs), "cpu")
    assert rec.choice == "int8-dynamic-onnx" and not rec.decided
    assert any("not separated" in c for c in rec.caveats)


def test_report_files_render_and_parse(result_set):
    from PIL import Image
    cmp = report.compute(result_set, ["constructed set"], device="cpu")
    figs = report.make_figures(cmp, "report-test")
    assert {"size_memory", "fidelity_cosines"} <= set(figs) and any(k.startswith("quality_vs_speed") for k in figs)
    devices = {r.device for r in cmp.recommendations.values()}
    assert devices == {"cpu", "cuda"}
    gpu = [r for r in cmp.recommendations.values() if r.device == "cuda"][0]
    assert gpu.choice == "fp16"
    files = report.export(cmp, "report-test", figs)
    assert files["html"] == paths.run_dir("report-test") / "report.html"
    assert all(oct(p.stat().st_mode & 0o777) == "0o644" for p in files.values())   # shared with the team
    page = files["html"].read_text()
    p = _Collect()
    p.feed(page)
    assert p.tables >= 4 and len(p.imgs) == len(figs)
    for img in p.imgs:
        raw = base64.b64decode(img["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
    text = " ".join(p.text)
    assert MADE_UP in text and "Claims ledger" in text and "Test CPU" in text
    assert text.index("Recommendation") < text.index("Claims ledger")            # the answer comes first
    assert "http://" not in page and "https://" not in page and "<script" not in page   # self-contained
    csv = pd.read_csv(files["csv"])
    assert MADE_UP in set(csv["label"]) and len(csv) == len(result_set)
    assert {"speed_vs_eager_lo", "speed_vs_eager_hi", "memory_mb_lo", "quality_loss_pct_hi"} <= set(csv.columns)
    led = pd.read_csv(files["ledger_csv"])
    assert "not measured" in set(led["verdict"]) and "baseline" in led.columns


def test_report_tables_scroll_in_their_own_box_and_figures_shrink_to_fit(result_set):
    page = report.to_html(report.compute(result_set, ["constructed set"], device="cpu"))
    assert page.count("<table") >= 4 and page.count("<table") == page.count("<div class='scroll'><table")
    assert ".scroll{overflow-x:auto" in report.CSS and "img{display:block;max-width:100%;height:auto" in report.CSS
    assert "min-width:min(" in page                      # data tables keep readable columns on a phone
    assert "width=device-width" in page


def test_report_with_no_results_says_so():
    cmp, files = report.build(["no-such-run"], [], out_run="report-empty")
    page = files["html"].read_text()
    assert "No results were found" in page and "no-such-run" in page
    assert files["md"].is_file() and files["csv"].is_file()
    assert not [k for k in files if k.startswith("figure:")]


def test_load_resolves_runs_and_folders_and_keeps_every_key(result_set, tmp_path):
    for r in result_set[:4]:
        results.save(r)                                   # outputs/small/results under BGEQ_OUTPUTS
    folder = tmp_path / "gpu"
    for r in result_set[-2:]:
        results.save(r, folder)
    found, msgs = load(["small", "no-such-run"], [str(folder)])
    assert len(found) == 6
    assert any("no results folder" in x for x in msgs)


def test_markdown_table_escapes_and_blanks():
    md = report.markdown_table(pd.DataFrame({"a": ["x|y", None], "b": [1.5, float("nan")]}))
    assert md.splitlines()[2] == "| x\\|y | 1.5 |" and md.splitlines()[3] == "|  |  |"
    json.dumps(md)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.text = 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.imgs.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_guide_table_once_per_group_and_relation_evidence_folded(result_set):
    """The guide's table under one heading per group (the group's name not repeated in every row); a relation
    claim's pairs folded behind its verdict and a one-line summary; the ledger header states the policy."""
    extra = [result("int8-static-onnx", run="small", disk_mb=28, mem_mb=(150, 149, 151), cos=0.99, loss_pct=0.6),
             result("int8-dynamic-onnx", run="small", disk_mb=33, mem_mb=(165, 163, 167), cos=0.99, loss_pct=0.3)]
    cmp = report.compute(result_set + extra, min_cos=0.98)
    html = report.to_html(cmp)
    groups = [g for g, _ in report.guide_tables(cmp.measured)]
    assert groups and all(html.count(f"<h3>{g}</h3>".replace("'", "&#x27;")) >= 1 for g in groups)
    assert all("group" not in sub.columns for _, sub in report.guide_tables(cmp.measured))
    assert "(random weights) (random)" not in html
    assert "<details><summary>" in html and " pairs)</summary><ul><li>" in html
    assert "Holm" in html and "min_cos=0.98" in html
