"""What the export tests share: one verified export of int8-dynamic-onnx (built once per session) and the checks
a verified export passes."""
import pytest

from bgeq_utils.export import MIN_COSINE, export


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def assert_verified(report, loader):
    c = report.check(loader)
    assert c is not None and c.status == "ok", report.table()
    assert c.passed
    assert c.vs_method["cos_mean"] >= MIN_COSINE and c.vs_method["cos_min"] >= MIN_COSINE
    assert c.vs_method["n"] == report.n_texts
    return c


@pytest.fixture(scope="session")
def onnx_export(reference, texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "minilm-int8-dynamic-onnx"
    return export("int8-dynamic-onnx", out_dir=out, texts=texts, reference=reference)
