"""scripts/report_check.py: the report read in a real headless browser at 1400 and 400 px (slow, needs Chromium),
and the part that decides from the browser's measurements (fast, no browser)."""
from __future__ import annotations

import importlib.util
import json

import pytest

from bgeq_utils.compare import report
from bgeq_utils.core import paths
from tests.compare.realistic import realistic_results


def _load_script():
    spec = importlib.util.spec_from_file_location("report_check", paths.ROOT / "scripts" / "report_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rc = _load_script()
BROWSER = rc.find_browser()


def _summary(width, scroll_width=None, overflowing=(), images=(), scrolling=(), font=13.0):
    return {"inner_width": width, "scroll_width": scroll_width or width, "scroll_height": 5000,
            "overflowing": list(overflowing), "images": list(images), "scrolling": list(scrolling),
            "min_font_px": font}


def _dump(summary) -> str:
    """What ``chromium --dump-dom`` prints: the probe's JSON as the text of a <pre>, HTML-escaped."""
    import html
    return (f"<html><head></head><body><h1>x</h1><iframe src='r.html'></iframe>"
            f"<pre id=\"{rc.RESULT_ID}\">{html.escape(json.dumps(summary), quote=False)}</pre></body></html>")


# --- fast: no browser -----------------------------------------------------------------------------------
def test_parse_dump_reads_the_probe_and_says_when_it_is_missing():
    s = _summary(400, overflowing=[{"element": "td", "text": "a < b & c", "width": 900, "right": 910}])
    assert rc.parse_dump(_dump(s)) == s
    assert "error" in rc.parse_dump("<html><body>no probe</body></html>")
    assert "error" in rc.parse_dump(f"<pre id='{rc.RESULT_ID}'>{{not json</pre>")


def test_a_page_that_fits_passes_and_one_that_scrolls_sideways_fails_naming_what_sticks_out():
    assert rc.problems(_summary(400), 400) == []
    wide = {"element": "p.note (text)", "text": "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "width": 561, "right": 577}
    out = rc.problems(_summary(400, scroll_width=577, overflowing=[wide]), 400)
    assert len(out) == 1 and "577px wide in a 400px viewport" in out[0] and "p.note (text)" in out[0]
    img = {"alt": "size_memory", "width": 1250, "natural": 1250, "wider_than_viewport": True}
    out = rc.problems(_summary(1400, images=[img]), 1400)
    assert any("image 'size_memory'" in x for x in out)
    assert rc.problems({"error": "no measurement"}, 400) == ["400px: no measurement"]


def test_tables_that_scroll_in_their_container_and_shrunk_figures_are_notes_not_failures():
    sc = [{"element": "table", "section": "Claims ledger", "content_width": 1200, "width": 378}] * 3
    img = [{"alt": "size_memory", "width": 378, "natural": 1250, "wider_than_viewport": False}]
    s = _summary(400, scrolling=sc, images=img, font=9)
    assert rc.problems(s, 400) == []
    notes = rc.warnings(s, 400)
    assert "400px: 3 table(s) scroll sideways in their containers" in notes
    assert any("smallest text is 9px" in n for n in notes) and any("30-30%" in n for n in notes)
    assert any("'Claims ledger' scrolls sideways" in n for n in rc.warnings(_summary(1400, scrolling=sc), 1400))


def test_the_probe_goes_before_the_end_of_the_body_and_the_frame_holds_the_page():
    page = rc.inject("<html><body><p>x</p></body></html>")
    assert page.index(rc.RESULT_ID) < page.index("</body>") and page.startswith("<html><body><p>x</p>")
    assert rc.RESULT_ID in rc.inject("<p>no body end</p>")
    holder = rc.frame("file:///tmp/a%20b/report.html", 400, 900)
    assert "width:400px" in holder and "src='file:///tmp/a%20b/report.html'" in holder


def test_a_missing_browser_is_one_clear_line_with_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(rc, "find_browser", lambda explicit=None: None)
    assert rc.main(["--run", "anything"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install -y chromium" in err


def test_a_run_or_a_path_names_the_report(tmp_path, capsys):
    assert rc.resolve_report(None, "some-run") == paths.run_dir("some-run") / "report.html"
    assert rc.resolve_report("some-run", None) == paths.run_dir("some-run") / "report.html"
    assert rc.resolve_report(str(tmp_path), None) == tmp_path / "report.html"
    assert rc.resolve_report(str(tmp_path / "r.html"), None) == tmp_path / "r.html"
    if BROWSER:
        assert rc.main(["--run", "no-such-run-here"]) == 2
        assert "no report at" in capsys.readouterr().err


# --- slow: Chromium ----------------------------------------------------------------------------------
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium (Debian: apt-get install -y chromium)")


@pytest.mark.slow
@needs_browser
def test_the_report_reads_on_a_wide_screen_and_a_phone(capsys):
    from PIL import Image
    cmp = report.compute(realistic_results(), ["realistic set"], device="cpu")
    files = report.export(cmp, "report-check-test", report.make_figures(cmp, "report-check-test"))
    assert rc.main(["--run", "report-check-test"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "fits at 1400px and 400px" in out and str(paths.ROOT) not in out
    shots = files["html"].parent / "screenshots"
    for w in (1400, 400):
        png = shots / f"report-{w}px.png"
        assert png.is_file() and oct(png.stat().st_mode & 0o777) == "0o644"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        with Image.open(png) as im:
            assert im.width == w and im.height > 2000                  # the page, not a blank viewport
            assert len(set(im.convert("L").resize((50, 200)).getdata())) > 10
    res = rc.check(files["html"], BROWSER, out_dir=shots)
    for w in (1400, 400):
        s = res["widths"][w]
        assert s["inner_width"] == w and s["scroll_width"] <= w and not s["overflowing"], s
        assert s["min_font_px"] >= 12 and len(s["images"]) == 5
    assert res["problems"] == []


@pytest.mark.slow
@needs_browser
def test_a_page_that_overflows_on_a_phone_fails(tmp_path, capsys):
    page = tmp_path / "report.html"
    page.write_text("<!DOCTYPE html><html><head><meta name='viewport' content='width=device-width'></head><body>"
                    "<h2>Wide</h2><p>" + "x" * 120 + "</p><div class='scroll' style='overflow-x:auto'>"
                    "<table><tr><td style='min-width:900px'>fine: it scrolls in its box</td></tr></table></div>"
                    "</body></html>")
    assert rc.main([str(page), "--out", str(tmp_path / "shots")]) == 1
    err = capsys.readouterr().err
    assert "400px:" in err and "p (text)" in err and "1400px:" not in err
    assert (tmp_path / "shots" / "report-400px.png").is_file()
