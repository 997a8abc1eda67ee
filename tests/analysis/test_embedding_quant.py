"""Quantized embeddings (notebook 08): packing, calibration, rescoring, faiss against NumPy, index bytes, one
study end to end on a BEIR-layout folder, and the report's storage section."""
from __future__ import annotations

import numpy as np
import pytest

from bgeq_utils.analysis import embedding_quant as eq
from bgeq_utils.compare import embedding_storage, plots, report
from bgeq_utils.core import results
from bgeq_utils.measure import metrics
from tests.factories import fp32, index_result, lee_known_items

pytest.importorskip("faiss")


def _unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("dim", [64, 60])
def test_binary_packing_round_trips_to_the_signs(dim):
    x = _unit(np.random.default_rng(0), 30, dim)
    for precision in ("binary", "ubinary"):
        qc = eq.quantize(x, precision)
        assert qc.codes.shape == (30, (dim + 7) // 8)
        assert qc.codes.dtype == (np.int8 if precision == "binary" else np.uint8)
        np.testing.assert_array_equal(eq.unpack_signs(qc.codes, dim), np.where(x > 0, 1.0, -1.0))
        index = eq.build_index(qc)                       # the index holds exactly the packed bits
        np.testing.assert_array_equal(index.reconstruct_n(0, 30), np.packbits(x > 0, axis=-1))


def test_int8_ranges_come_from_the_corpus_and_a_query_outside_them_is_clipped():
    from sentence_transformers.util.quantization import quantize_embeddings
    rng = np.random.default_rng(1)
    corpus, queries = _unit(rng, 40, 16), _unit(rng, 5, 16)
    for precision, low, high in (("int8", -128, 127), ("uint8", 0, 255)):
        qc = eq.quantize(corpus, precision)
        np.testing.assert_array_equal(qc.ranges, np.vstack([corpus.min(0), corpus.max(0)]))
        np.testing.assert_array_equal(qc.codes, quantize_embeddings(corpus, precision, calibration_embeddings=corpus))
        # the corpus codes never see a query; each query's codes depend on the corpus ranges only
        np.testing.assert_array_equal(eq.quantize(corpus, precision).codes, qc.codes)
        alone = qc.query_codes(queries)
        extreme = np.vstack([queries, 10 * corpus.max(0), 10 * corpus.min(0)]).astype(np.float32)
        with_extremes = qc.query_codes(extreme)
        np.testing.assert_array_equal(with_extremes[:5], alone)
        assert (with_extremes[5] == high).all() and (with_extremes[6] == low).all()
        # sentence-transformers left to itself would take the ranges from the queries: other codes
        assert not np.array_equal(quantize_embeddings(extreme, precision).astype(np.float32)[:5], alone)


def test_dequantized_int8_is_within_one_step_of_the_float():
    x = _unit(np.random.default_rng(2), 50, 32)
    for precision in ("int8", "uint8"):
        qc = eq.quantize(x, precision)
        step = (qc.ranges[1] - qc.ranges[0]) / 255
        err = x - eq.dequantize(qc.codes, precision, qc.ranges)
        assert (err >= -1e-6).all() and (err <= step + 1e-6).all()


def test_faiss_and_exact_numpy_search_agree_on_float32():
    rng = np.random.default_rng(3)
    corpus, queries = _unit(rng, 80, 24), _unit(rng, 9, 24)
    qc = eq.quantize(corpus, "float32")
    ids = eq.ranking(qc, eq.build_index(qc), queries, depth=30)
    np.testing.assert_array_equal(ids, np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :30])
    # with a document excluded per query (Lee: a document never retrieves itself), as metrics.rank does
    exclude = np.arange(9)
    ids = eq.ranking(qc, eq.build_index(qc), corpus[:9], depth=30, exclude=exclude)
    doc_ids, qids = [f"d{i}" for i in range(80)], [f"d{i}" for i in range(9)]
    ranked = metrics.rank(corpus[:9], corpus, qids, doc_ids, k=30, exclude_self=True)
    assert [[doc_ids[j] for j in row] for row in ids] == [[d for d, _ in ranked[q]] for q in qids]


def test_index_bytes_are_exact():
    rng = np.random.default_rng(4)
    for n, d in ((37, 64), (10, 60)):
        x = _unit(rng, n, d)
        for precision, want in (("float32", 4 * n * d), ("int8", n * d), ("uint8", n * d),
                                ("binary", n * -(-d // 8)), ("ubinary", n * -(-d // 8))):
            index = eq.build_index(eq.quantize(x, precision))
            assert eq.index_bytes(index) == eq.expected_bytes(n, d, precision) == want
            assert eq.serialized_bytes(index) > want             # codes plus faiss's header
    assert eq.expected_bytes(37, 64, "binary") * 8 == 37 * 64


def _recall10(ids, relevant):
    return np.array([len(set(row[:10]) & rel) / len(rel) for row, rel in zip(ids, relevant)])


def test_rescoring_never_lowers_recall_against_no_rescoring_on_a_constructed_case():
    """Ten documents near each query (the query plus noise) among random ones: the quantized index pushes some of
    them out of its top 10; re-scoring more candidates with the float query brings them back, and never loses one."""
    rng = np.random.default_rng(5)
    queries = _unit(rng, 12, 48)
    corpus = _unit(rng, 300, 48)
    relevant = []
    for i, q in enumerate(queries):               # ten relevant documents per query: the query plus noise
        near = q + rng.normal(scale=0.35, size=(10, 48)).astype(np.float32)
        corpus[i * 10:(i + 1) * 10] = near / np.linalg.norm(near, axis=1, keepdims=True)
        relevant.append(set(range(i * 10, (i + 1) * 10)))
    for precision in ("binary", "int8", "uint8"):
        qc = eq.quantize(corpus, precision)
        index = eq.build_index(qc)
        plain = _recall10(eq.ranking(qc, index, queries), relevant)
        np.testing.assert_array_equal(_recall10(eq.ranking(qc, index, queries, 1), relevant), plain)  # same set
        previous = plain
        for m in (2, 4, 10):
            rescored = _recall10(eq.ranking(qc, index, queries, m), relevant)
            assert (rescored >= plain).all() and rescored.mean() >= previous.mean()
            previous = rescored
        if precision == "binary":
            assert previous.mean() > plain.mean()             # the case is one rescoring helps


def test_the_timed_search_returns_what_the_ranking_holds():
    rng = np.random.default_rng(6)
    corpus, queries = _unit(rng, 60, 32), _unit(rng, 4, 32)
    for precision, m in (("float32", 0), ("int8", 0), ("binary", 0), ("binary", 4), ("uint8", 2)):
        qc = eq.quantize(corpus, precision)
        index = eq.build_index(qc)
        call = eq.searcher(qc, index, queries[-1:], m)
        np.testing.assert_array_equal(call()[0], eq.ranking(qc, index, queries[-1:], m, depth=10)[0])


def test_a_study_end_to_end_on_a_beir_folder(tmp_path, reference, monkeypatch):
    from bgeq_utils import methods as registry
    from bgeq_utils.inputs import data
    from bgeq_utils.measure import pipeline
    folder = lee_known_items(tmp_path / "lee-known-items", documents=16, queries=8)
    ev = data.load_evalset(str(folder))
    run = "pytest-eq"
    s = pipeline.Study(reference, ev, pipeline.reference_embeddings(reference, ev, run=run), pipeline.BenchConfig(),
                       "cpu", run)
    real = eq.method_embeddings

    def embeddings(method, study):
        if method == "int4-onnx":
            raise registry.MethodUnavailable("not here (test)")
        return real(method, study)
    monkeypatch.setattr(eq, "method_embeddings", embeddings)
    recs = eq.measure(s, ["fp32", "int4-onnx"], ["int8", "binary"], [1, 2], seconds=0.02, min_repeats=2,
                      max_repeats=2, verbose=False)
    ok = [r for r in recs if r.status == "ok"]
    assert len(ok) == 1 + 2 * 3 and len({r.key for r in ok}) == len(ok)
    skipped = [r for r in recs if r.status == "skipped"]
    assert [(r.model_method, r.reason) for r in skipped] == [("int4-onnx", "not here (test)")]
    base = ok[0]
    assert (base.output_precision, base.rescore_multiplier) == ("float32", 0)
    assert base.retention["ndcg@10"]["value"] == 100.0 and base.retention["recall@100"] is None  # 16 docs <= 100
    assert base.quality["queries"] == 8
    # FP32 + float32 index is the pipeline's own quality of FP32
    q, _ = pipeline.quality(s.reference_emb, ev)
    assert base.quality["ndcg@10"] == pytest.approx(q["ndcg@10"])
    for r in ok:
        assert r.index["bytes"] == eq.expected_bytes(16, reference.dim, r.output_precision)
        assert r.speed["faster_x"]["value"] > 0 and r.speed["repeats"] == 2
        assert 0 <= r.quality["ndcg@10"] <= 1
    # saved apart from the model Results: results.load_run does not choke, the records load back
    assert results.load_run(run) == []
    loaded, messages = eq.load_run(run)
    assert not messages and sorted(r.key for r in loaded) == sorted(r.key for r in recs)
    t = embedding_storage.table(loaded)
    assert len(t) == len(recs) and "nDCG@10 retained %" in t and "skipped" in set(t["status"])
    assert len(embedding_storage.values(loaded, "08")) == 3 * len(ok)
    assert any("Index size" in line for line in embedding_storage.reading(loaded))


def test_unknown_precisions_and_multipliers_are_refused():
    with pytest.raises(ValueError, match="precisions"):
        eq.check_precisions(["int4"])
    with pytest.raises(ValueError, match="multipliers"):
        eq.check_multipliers([0])
    assert eq.check_precisions(["binary"]) == ["float32", "binary"]


# --- the report's storage section ----------------------------------------------------------------------
def _records(run="synthetic"):
    return [index_result(run=run), index_result("fp32", "int8", 0, run=run, retention=(97.0, 95.0, 99.0),
                                                faster=(1.1, 1.0, 1.2)),
            index_result("fp32", "binary", 4, run=run, retention=(96.0, 94.0, 98.0), faster=(0.3, 0.28, 0.32)),
            index_result("int8-static-openvino", "float32", run=run, status="skipped", reason="no openvino")]


def test_the_report_says_not_measured_without_records():
    cmp = report.compute([fp32(run="no-storage-here")])
    assert cmp.storage == []
    html, md = report.to_html(cmp), report.to_markdown(cmp)
    for text in (html, md):
        assert "Storage: quantized embeddings" in text and "Not measured" in text


def test_the_report_shows_the_storage_table_with_records():
    recs = _records("storage-in-report")
    for r in recs:
        eq.save(r)
    cmp = report.compute([fp32(run="storage-in-report")])          # found from the Results' run
    assert sorted(r.key for r in cmp.storage) == sorted(r.key for r in recs)
    html, md = report.to_html(cmp), report.to_markdown(cmp)
    for text in (html, md):
        assert "Storage: quantized embeddings" in text and "Not measured" not in text
        assert "x faster than float32" in text and "nDCG@10 retained %" in text
        assert "97.0 [95.0, 99.0]" in text and "0.30 [0.28, 0.32]" in text and "no openvino" in text
    t = embedding_storage.table(recs)
    assert list(t["x smaller"])[:3] == [1.0, 4.0, 32.0] and list(t["rescore"])[:3] == ["none", "none", "x4"]


def test_the_newest_record_of_a_configuration_stands_and_quality_not_applicable_says_why():
    old = index_result("fp32", "int8", 0, retention=90.0)
    old.created, old.key = "2020-01-01T00:00:00+00:00", "fp32-old"
    new = index_result("fp32", "int8", 0, retention=97.0)
    assert embedding_storage.latest([new, old]) == [new] == embedding_storage.latest([old, new])
    random = index_result("fp32", "binary", 0, run="random-weights")
    random.retention, random.notes = {}, ["random weights: quality is not applicable"]
    assert embedding_storage.table([random])["nDCG@10 retained %"].tolist() == ["not applicable (random weights)"]


def test_the_storage_figure_reads_without_overlapping_labels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plots.theme()
    fig = embedding_storage.figure(_records(), env_label="Test CPU, 2 cores")
    fig.suptitle("nDCG@10 retained by quantized embeddings, with rescoring")
    assert plots.overlapping_labels(fig) == []
    plt.close(fig)
    assert embedding_storage.figure([]) is None
