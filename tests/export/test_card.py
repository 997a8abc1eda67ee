"""The model card: the code that was verified, the verification figures, and the Result's measured row."""
from bgeq_utils.export import MIN_COSINE
from bgeq_utils.export import card as card_mod
from tests import factories


def test_model_card_has_load_code_and_verification_figures(onnx_export):
    r = onnx_export
    text = (r.out_dir / "README.md").read_text()
    # the exact code that was verified, with the folder's path relative to its parent: no machine's path
    assert r.loaders[0].render(r.out_dir.name).strip() in text
    assert str(r.out_dir.parent) not in text
    c = r.check("onnxruntime")
    assert c.estimate("method").fmt(6) in text                      # cosine to bgeq's encoder, as the table shows it
    assert c.estimate("fp32").fmt(4) in text                        # fidelity to FP32
    assert f"{r.n_texts} texts" in text and str(MIN_COSINE) in text
    assert "QInt8" in text and "onnxruntime" in text                # options and library versions
    assert "import onnxruntime as ort" in text                      # the loader without sentence-transformers


def test_model_card_shows_the_results_measured_row(onnx_export):
    """A Result's figures go into the card through the comparison's own views (none typed by hand)."""
    from bgeq_utils.compare import measured, tables
    base = factories.fp32(run="card")
    r = factories.result("int8-dynamic-onnx", run="card", runtime="onnxruntime", disk_mb=23.0, param_mb=22.9,
                         mem_mb=(120.0, 110.0, 130.0), speed=(2.1, 1.9, 2.3), speed_runtime=(1.6, 1.5, 1.7),
                         runtime_baseline="fp32-onnx", loss_pct=0.8, changed=12, cos=(0.993, 0.992, 0.994))
    fig, notes = card_mod.measured_figures(r, [base])
    text = card_mod.render(onnx_export, fig, notes, r)
    m = measured.tabulate([base, r])
    row = m.table[m.table["method"] == "int8-dynamic-onnx"].iloc[0]
    for shown in (tables.fmt(row, "speed_vs_eager"), tables.fmt(row, "speed_vs_runtime"),
                  tables.fmt(row, "memory_mb", 0), tables.fmt(row, "quality_loss_pct"), tables.fmt(row, "cos_mean", 4)):
        assert shown is not None and shown in text
    assert f"Result `{r.key}`" in text
