import pytest
from transformers import BertConfig

from bgeq_utils import methods
from bgeq_utils.core import uncertainty as stats
from bgeq_utils.measure import speed as bench


def test_flops_per_token_matches_bge_large_arithmetic():
    cfg = BertConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24)
    # 24 layers x 2 x (4h^2 + 2hi) = 2 x 302M linear weights, plus attention 2*L*h per layer
    assert bench.flops_per_token(cfg, 128) == pytest.approx(24 * 2 * (4 * 1024**2 + 2 * 1024 * 4096 + 2 * 128 * 1024))


def test_gemm_ceiling_is_positive_and_names_library():
    c = bench.gemm_ceiling("fp32", "cpu", n=256)
    assert c["gflops"] > 0 and c["library"] in c["by_library"]


def test_share_is_capped_and_flagged():
    rows = bench.add_ceiling_share([{"gflops": 50.0}, {"gflops": 150.0}], {"gflops": 100.0})
    assert rows[0]["share_of_ceiling"] == 0.5 and not rows[0]["share_capped"]
    assert rows[1]["share_of_ceiling"] == 1.0 and rows[1]["share_capped"]


def test_interleaved_alternates_and_pairs_rounds():
    order = []
    calls = {n: (lambda n=n: order.append(n)) for n in "ABC"}
    times = bench.interleaved(calls, bench.Budget(warmup=0, min_repeats=6, max_repeats=6, seconds=60))
    assert all(len(t) == 6 for t in times.values())
    rounds = [order[i:i + 3] for i in range(0, 18, 3)]
    assert rounds[:3] == [list("ABC"), list("BCA"), list("CAB")]      # each takes each position in turn


class FakeClock:
    """perf_counter for the speed module: each timed call advances it by that call's cost, so budget
    decisions are tested without depending on how busy the machine is."""
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def calls(self, costs: dict) -> dict:
        def make(cost):
            def call():
                self.now += cost
            return call
        return {n: make(c) for n, c in costs.items()}


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(bench.time, "perf_counter", c)
    return c


def test_interleaved_stops_on_budget_after_the_minimum(clock):
    times = bench.interleaved(clock.calls({"slow": 0.02}),
                              bench.Budget(warmup=0, min_repeats=6, max_repeats=1000, seconds=0.1, target=0))
    assert len(times["slow"]) == 6 and times.stopped == bench.STOP_BUDGET


def test_interleaved_gives_a_too_slow_cell_one_short_measurement(clock):
    """Six rounds of a call four times the budget would take 24 budgets: one round is taken, no interval."""
    times = bench.interleaved(clock.calls({"fp32": 0.01, "fp16": 0.2}),
                              bench.Budget(warmup=1, min_repeats=6, max_repeats=60, seconds=0.05))
    assert len(times["fp16"]) == len(times["fp32"]) == 1 and times.stopped == bench.STOP_TOO_SLOW
    assert not stats.median(times["fp16"]).has_interval


def test_interleaved_takes_the_minimum_when_it_fits_the_allowed_overrun(clock):
    times = bench.interleaved(clock.calls({"a": 0.01}),
                              bench.Budget(warmup=1, min_repeats=6, max_repeats=6, seconds=0.04, target=0))
    assert len(times["a"]) == 6


def test_a_slow_first_call_does_not_cut_a_fast_cell(clock):
    """The warm-up pays first-call costs (a session's first run, a compile): the decision reads measured rounds."""
    cost = iter([5.0] + [0.01] * 100)
    calls = {"a": lambda: setattr(clock, "now", clock.now + next(cost))}
    times = bench.interleaved(calls, bench.Budget(warmup=1, min_repeats=6, max_repeats=6, seconds=0.1, target=0))
    assert len(times["a"]) == 6


def test_speed_grid_times_each_method_beside_its_baselines(reference):
    enc = methods.build("fp32", reference)
    other = methods.build("fp16", reference)
    rows = bench.speed_grid(other, {"eager": ("fp32", enc), "runtime": ("fp32", enc)}, batch_sizes=(2,),
                            seq_lens=(24,), budget=bench.Budget(warmup=0, min_repeats=6, max_repeats=6, seconds=60),
                            progress=False, config=reference.model.config)
    r = rows[0]
    assert r["seq_len"] == 24 and r["tokens_per_s"] == pytest.approx(r["sentences_per_s"] * 24)
    assert r["repeats"] == 6 and r["window"] == ["fp32", "method"]
    e = r["vs_eager"]
    assert e["baseline"] == "fp32" and e["low"] <= e["value"] <= e["high"]
    assert r["vs_runtime"]["value"] == r["vs_eager"]["value"]     # one baseline, timed once per round
    own = bench.speed_grid(enc, {"eager": ("fp32", enc)}, batch_sizes=(2,), seq_lens=(24,),
                           budget=bench.Budget(warmup=0, min_repeats=6, max_repeats=6), progress=False)[0]
    assert own["vs_eager"]["value"] == 1.0 and own["window"] == ["method"]
    assert enc.tokenize(["a b"], max_length=24, pad_to_max=True)["input_ids"].shape == (1, 24)


def test_window_times_every_configuration_in_one_window(reference):
    enc = methods.build("fp32", reference)
    rows = bench.window({"a": enc, "b": enc}, batch_size=2, seq_len=16,
                        budget=bench.Budget(warmup=0, min_repeats=3, max_repeats=3, seconds=5),
                        config=reference.model.config, precisions={"a": "fp32", "b": "fp32"})
    assert [r["label"] for r in rows] == ["a", "b"] and all(r["repeats"] == 3 for r in rows)
    assert rows[0]["vs_first"]["value"] == 1.0 and rows[1]["vs_first"]["baseline"] == "a"
    assert rows[0]["vs_best_fp32"]["baseline"] in ("a", "b")
    assert 0 < rows[0]["share_of_ceiling"] <= 1 and rows[0]["seq_len"] == 16
    with pytest.raises(ValueError, match="at least one encoder"):
        bench.window({})


def test_methods_timed_together_share_their_baselines_and_a_broken_one_is_left_out(reference):
    enc = methods.build("fp32", reference)
    a, b = methods.build("fp16", reference), methods.build("bf16", reference)

    class Broken:
        method, max_seq_length = "broken", enc.max_seq_length

        def tokenize(self, *a, **k):
            return enc.tokenize(*a, **k)

        def embed_features(self, feats):
            raise RuntimeError("no kernel for this shape")
    base = {"eager": ("fp32", enc), "runtime": ("fp32", enc)}
    out = bench.speed_grid_many({"a": (a, base), "b": (b, base), "x": (Broken(), base)}, batch_sizes=(2,),
                                seq_lens=(24,), budget=bench.Budget(warmup=1, min_repeats=6, max_repeats=6,
                                                                    seconds=60), progress=False)
    assert isinstance(out["x"], bench.WindowCallFailed) and "no kernel for this shape" in str(out["x"])
    ra, rb = out["a"][0], out["b"][0]
    assert ra["window"] == rb["window"] == ["a", "b", "fp32"]          # the shared baseline once, the broken out
    assert ra["repeats"] == rb["repeats"] == 6
    assert ra["baseline_tokens_per_s"] == rb["baseline_tokens_per_s"]  # one baseline timing serves both
    for r in (ra, rb):
        e = r["vs_eager"]
        assert e["baseline"] == "fp32" and e["low"] <= e["value"] <= e["high"]
    with pytest.raises(bench.WindowCallFailed, match="no kernel"):
        bench.speed_grid(Broken(), base, batch_sizes=(2,), seq_lens=(24,), progress=False,
                         budget=bench.Budget(warmup=0, min_repeats=2, max_repeats=2))


def test_a_shared_window_has_the_sum_of_the_methods_budgets(reference, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "interleaved", lambda calls, budget, progress=None: seen.append(budget) or
                        bench.Timings({n: [0.01, 0.01] for n in calls}))
    enc = methods.build("fp32", reference)
    bench.speed_grid_many({"a": (enc, {}), "b": (methods.build("bf16", reference), {})}, batch_sizes=(2,),
                          seq_lens=(16,), budget=bench.Budget(warmup=2, seconds=3.0), progress=False)
    assert seen[0].seconds == 6.0 and seen[0].warmup == 1   # the trial call was the first warm-up
