"""Check report.html in a real headless browser: no horizontal overflow on a phone or a wide screen, screenshots.

    python scripts/report_check.py [--run NAME | REPORT] [--widths 1400 400] [--out DIR]

For each width (default 1400 and 400 CSS pixels) Chromium opens a copy of the report with a small script
injected, in a frame exactly that wide (a browser window is at least 500 px wide, so a phone's 400 px
viewport is a frame; its media queries and ``innerWidth`` are the frame's). After load (every <details>
opened, so folded content is measured too), the script compares
``document.documentElement.scrollWidth`` with ``window.innerWidth`` and lists the elements that stick out of
the viewport outside a horizontally scrollable container, and the images wider than the viewport; the
browser's DOM dump carries that summary back. Then it takes a screenshot of the page (the full height, up
to ``--max-height``) into ``outputs/<run>/screenshots/report-<width>px.png`` (group-readable) or ``--out``.

Exit status: 0 when no width overflows, 1 when one does (the offending elements are named), 2 when the
browser or the report is missing. The browser: ``chromium`` (Debian: ``apt-get install -y chromium``),
``chromium-browser`` or ``google-chrome``, or ``--browser PATH``.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "apt-get install -y chromium"
WIDTHS = (1400, 400)
HEIGHT = 900
RESULT_ID = "bgeq-report-check"
TIMEOUT_S = 180

# Runs after load: opens every <details>, measures, and writes a JSON summary into a <pre> the DOM dump shows.
PROBE = """
<script>
window.addEventListener('load', function () {
  var out = {};
  try {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
    var W = window.innerWidth, D = document.documentElement;
    function scrolls(p) {                                       // a container that scrolls (or clips) sideways
      var o = getComputedStyle(p).overflowX;
      return (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') && p.clientWidth <= W + 1;
    }
    function scroller(el) {
      for (var p = el.parentElement; p && p !== document.body && p !== D; p = p.parentElement) if (scrolls(p)) return p;
      return null;
    }
    function describe(el, r) {
      var s = el.tagName.toLowerCase();
      if (el.id) s += '#' + el.id;
      var c = typeof el.className === 'string' ? el.className.trim() : '';
      if (c) s += '.' + c.split(/\\s+/).join('.');
      var t = (el.getAttribute('alt') || el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
      var h = '', hs = document.querySelectorAll('h2, h3');       // the heading it sits under
      for (var i = 0; i < hs.length; i++)
        if (hs[i].compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) h = hs[i].textContent.trim();
      return {element: s, text: t, section: h.slice(0, 60), left: Math.round(r.left), right: Math.round(r.right),
              width: Math.round(r.width)};
    }
    var wide = [], listed = [];
    document.body.querySelectorAll('*').forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;
      if (r.right <= W + 1 && r.left >= -1) return;
      if (scroller(el)) return;
      for (var i = 0; i < listed.length; i++) if (listed[i].contains(el)) return;   // its outermost only
      listed.push(el); wide.push(describe(el, r));
    });
    var scrolling = [];                                         // fine, but worth knowing on a wide screen
    document.body.querySelectorAll('*').forEach(function (el) {
      if (scrolls(el) && el.scrollWidth > el.clientWidth + 1 && el.getClientRects().length) {
        var d = describe(el.firstElementChild || el, el.getBoundingClientRect());
        d.content_width = el.scrollWidth; d.width = el.clientWidth; scrolling.push(d);
      }
    });
    var imgs = [], minFont = null;
    document.querySelectorAll('img').forEach(function (im) {
      var r = im.getBoundingClientRect();
      imgs.push({alt: im.getAttribute('alt') || '', width: Math.round(r.width), natural: im.naturalWidth,
                 wider_than_viewport: r.width > W + 1});
    });
    var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      var n = walk.currentNode, p = n.parentElement;
      if (!n.nodeValue.trim() || !p || p.id === '%(id)s') continue;
      if (!p.getClientRects().length) continue;
      var f = parseFloat(getComputedStyle(p).fontSize);
      if (minFont === null || f < minFont) minFont = f;
      var range = document.createRange();                       // text running out of its box (a long word)
      range.selectNodeContents(n);
      var rr = range.getBoundingClientRect();
      if ((rr.right > W + 1 || rr.left < -1) && !scrolls(p) && !scroller(p)) {
        var inside = false;
        for (var i = 0; i < listed.length; i++) if (listed[i].contains(p)) inside = true;
        if (!inside) { listed.push(p); var d = describe(p, rr); d.element += ' (text)'; wide.push(d); }
      }
    }
    out = {inner_width: W, scroll_width: D.scrollWidth, body_scroll_width: document.body.scrollWidth,
           scroll_height: D.scrollHeight, overflowing: wide, scrolling: scrolling, images: imgs, min_font_px: minFont};
  } catch (e) { out = {error: String(e)}; }
  if (window.parent !== window) { window.parent.postMessage(JSON.stringify(out), '*'); return; }
  var pre = document.createElement('pre');
  pre.id = '%(id)s';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
""".replace("%(id)s", RESULT_ID)

# The page that holds the report in a frame of the checked width; it writes the probe's message into the DOM.
FRAME = """<!DOCTYPE html><html><head><meta charset='utf-8'><style>html,body{margin:0;padding:0;overflow:hidden}
iframe{border:0;display:block;width:%(w)dpx;height:%(h)dpx}</style></head><body>
<iframe src='%(src)s' scrolling='no'></iframe>
<script>window.addEventListener('message', function (e) {
  var pre = document.createElement('pre'); pre.id = '%(id)s'; pre.textContent = e.data; document.body.appendChild(pre);
});</script></body></html>"""
MIN_WINDOW = 500            # Chromium's narrowest window, headless too


def find_browser(explicit: str | None = None) -> str | None:
    """The path of a Chromium-family browser: ``explicit`` when given, else the first of BROWSERS on PATH."""
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def resolve_report(target: str | None, run: str | None) -> Path:
    """A report.html from a path (the file or the folder holding it) or a run name under outputs/."""
    from bgeq_utils.core import paths
    if run:
        return paths.run_dir(run) / "report.html"
    if target is None:
        return paths.run_dir("default") / "report.html"
    p = Path(target)
    if p.is_dir():
        return p / "report.html"
    if p.suffix.lower() in (".html", ".htm") or p.exists():
        return p
    return paths.run_dir(target) / "report.html"                 # a bare name: a run


def inject(page: str) -> str:
    """The page with the measuring script placed just before </body> (or at the end)."""
    i = page.lower().rfind("</body>")
    return page + PROBE if i < 0 else page[:i] + PROBE + page[i:]


def parse_dump(dom: str) -> dict:
    """The summary the probe wrote into the DOM dump; {'error': ...} when it is not there."""
    m = re.search(rf"<pre[^>]*id=[\"']?{RESULT_ID}[\"']?[^>]*>(.*?)</pre>", dom, re.S)
    if not m:
        return {"error": "the browser's DOM dump has no measurement (the page did not finish loading?)"}
    try:
        return json.loads(html.unescape(m.group(1)))
    except json.JSONDecodeError as e:
        return {"error": f"unreadable measurement: {e}"}


def problems(summary: dict, width: int) -> list[str]:
    """Why the page fails at this width: horizontal overflow (naming what sticks out) or no measurement."""
    if "error" in summary:
        return [f"{width}px: {summary['error']}"]
    out = []
    inner, sw = summary.get("inner_width", width), summary.get("scroll_width", 0)
    wide = summary.get("overflowing") or []
    imgs = [i for i in summary.get("images") or [] if i.get("wider_than_viewport")]
    if sw > inner or wide or imgs:
        names = [f"{w['element']} ({w['width']}px wide, right edge {w['right']}px"
                 + (f": {w['text']!r})" if w.get("text") else ")") for w in wide[:12]]
        more = f" and {len(wide) - 12} more" if len(wide) > 12 else ""
        out.append(f"{width}px: the page is {sw}px wide in a {inner}px viewport (scrolls sideways); "
                   f"outside a scrollable container: {'; '.join(names) or 'nothing listed'}{more}")
    for i in imgs:
        out.append(f"{width}px: image {i['alt']!r} is {i['width']}px wide, wider than the viewport")
    return out


def warnings(summary: dict, width: int, min_font: float = 11.0, wide: int = 1000) -> list[str]:
    """What fits but is worth a look: on a wide screen (``wide`` px or more) each table that still scrolls
    sideways in its container (on a narrower one, how many do: expected); text under ``min_font`` px;
    figures shown below half their size."""
    out = []
    sc = summary.get("scrolling") or []
    if width >= wide:
        out += [f"{width}px: {s['element']} under {s.get('section', '')!r} scrolls sideways in its container "
                f"({s['content_width']}px in {s['width']}px)" for s in sc]
    elif sc:
        out.append(f"{width}px: {len(sc)} table(s) scroll sideways in their containers")
    f = summary.get("min_font_px")
    if f is not None and f < min_font:
        out.append(f"{width}px: smallest text is {f:g}px (below {min_font:g}px)")
    small = [i for i in summary.get("images") or [] if i.get("natural") and i["width"] < 0.5 * i["natural"]]
    if small:
        pct = sorted(round(100 * i["width"] / i["natural"]) for i in small)
        out.append(f"{width}px: {len(small)} figure(s) shown at {pct[0]}-{pct[-1]}% of their size (zoom to read)")
    return out


def frame(src_uri: str, width: int, height: int) -> str:
    """The page holding ``src_uri`` in a frame ``width`` x ``height`` CSS px."""
    return FRAME % {"w": width, "h": height, "src": html.escape(src_uri, quote=True), "id": RESULT_ID}


def _browser_args(browser: str, profile: str, width: int, height: int) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            f"--user-data-dir={profile}", f"--window-size={max(width, MIN_WINDOW)},{height}"]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)


def measure(browser: str, report: Path, width: int, height: int = HEIGHT) -> dict:
    """Open an instrumented copy of the report in a frame ``width`` x ``height``; the probe's summary."""
    with tempfile.TemporaryDirectory(prefix="bgeq-report-check-") as tmp:
        page, holder = Path(tmp) / "report.html", Path(tmp) / "frame.html"
        page.write_text(inject(report.read_text(encoding="utf-8")), encoding="utf-8")
        holder.write_text(frame(page.as_uri(), width, height), encoding="utf-8")
        proc = _run(_browser_args(browser, str(Path(tmp) / "profile"), width, height)
                    + ["--dump-dom", "--virtual-time-budget=5000", holder.as_uri()])
    summary = parse_dump(proc.stdout)
    if "error" in summary and proc.returncode:
        summary["error"] += f" (browser exit {proc.returncode}: {_last_line(proc.stderr)})"
    return summary


def screenshot(browser: str, report: Path, out: Path, width: int, height: int) -> Path:
    """A PNG of the report in a frame ``width`` x ``height`` (0644)."""
    from PIL import Image
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="bgeq-report-shot-") as tmp:
        holder = Path(tmp) / "frame.html"
        holder.write_text(frame(report.resolve().as_uri(), width, height), encoding="utf-8")
        proc = _run(_browser_args(browser, str(Path(tmp) / "profile"), width, height)
                    + [f"--screenshot={out.resolve()}", "--virtual-time-budget=5000", holder.as_uri()])
    if not out.is_file():
        raise RuntimeError(f"no screenshot at {width}px (browser exit {proc.returncode}: {_last_line(proc.stderr)})")
    with Image.open(out) as im:
        im.load()
    if im.width > width:                                          # the window is wider than the frame
        im.crop((0, 0, width, im.height)).save(out)
    out.chmod(0o644)
    return out


def _last_line(text: str) -> str:
    lines = [x for x in (text or "").splitlines() if x.strip() and "unexpected operator" not in x]
    return lines[-1][:200] if lines else "no message"


def check(report: Path, browser: str, widths=WIDTHS, height: int = HEIGHT, out_dir: Path | None = None,
          max_height: int = 12000) -> dict:
    """Measure and screenshot the report at each width; {'widths': {w: summary}, 'screenshots': {w: path},
    'problems': [...], 'warnings': [...]}."""
    out_dir = Path(out_dir) if out_dir else report.parent / "screenshots"
    res = {"widths": {}, "screenshots": {}, "problems": [], "warnings": []}
    for w in widths:
        s = measure(browser, report, w, height)
        res["widths"][w] = s
        res["problems"] += problems(s, w)
        res["warnings"] += warnings(s, w)
        full = min(max(int(s.get("scroll_height") or height), height), max_height)
        res["screenshots"][w] = screenshot(browser, report, out_dir / f"report-{w}px.png", w, full)
    return res


def _shown(p: Path) -> str:
    try:
        from bgeq_utils.core import paths
        return paths.shown(p)
    except Exception:                                             # noqa: BLE001 - printing only
        return str(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", nargs="?", help="report.html, the folder holding it, or a run name (default: default)")
    ap.add_argument("--run", help="the run under outputs/ whose report.html to check")
    ap.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), help="viewport widths, CSS px")
    ap.add_argument("--height", type=int, default=HEIGHT, help="viewport height while measuring, CSS px")
    ap.add_argument("--max-height", type=int, default=12000, help="screenshots cover the page up to this height")
    ap.add_argument("--out", help="folder for the screenshots (default: screenshots/ beside the report)")
    ap.add_argument("--browser", help="the browser to use (default: the first of %s on PATH)" % ", ".join(BROWSERS))
    ap.add_argument("--json", action="store_true", help="also print the measurements as JSON")
    a = ap.parse_args(argv)
    browser = find_browser(a.browser)
    if browser is None:
        print(f"report-check: no Chromium found ({', '.join(BROWSERS)}); install it: {INSTALL}", file=sys.stderr)
        return 2
    try:
        report = resolve_report(a.report, a.run)
    except ValueError as e:
        print(f"report-check: {e}", file=sys.stderr)
        return 2
    if not report.is_file():
        print(f"report-check: no report at {_shown(report)}; build it first (make report)", file=sys.stderr)
        return 2
    try:
        res = check(report, browser, a.widths, a.height, a.out, a.max_height)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"report-check: {e}", file=sys.stderr)
        return 2
    for w, s in res["widths"].items():
        print(f"{w:5d}px: page {s.get('scroll_width')}px wide in a {s.get('inner_width')}px viewport, "
              f"smallest text {s.get('min_font_px')}px; screenshot {_shown(res['screenshots'][w])}")
    if a.json:
        print(json.dumps(res["widths"], indent=1))
    for x in res["warnings"]:
        print(f"note: {x}")
    for x in res["problems"]:
        print(f"FAIL: {x}", file=sys.stderr)
    print(f"report-check: {_shown(report)}: " + ("overflows" if res["problems"] else "fits at "
                                                  + " and ".join(f"{w}px" for w in res["widths"])))
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
