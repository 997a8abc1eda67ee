"""Phase events: written only when the runner asks, read back line by line."""
from bgeq_utils.core import progress


def test_phases_are_written_where_asked_and_read_back_incrementally(tmp_path, monkeypatch):
    target = tmp_path / "p.jsonl"
    progress.event("build", "x")                          # no file asked for: nothing written, no error
    assert not target.exists()
    monkeypatch.setenv(progress.ENV, str(target))
    with progress.phase("window", "3 configurations"):
        pass
    events, offset = progress.read_new(target)
    assert [(e["phase"], "seconds" in e) for e in events] == [("window", False), ("window", True)]
    assert progress.read_new(target, offset) == ([], offset)
    with open(target, "a") as f:
        f.write('{"phase": "memory", "what": "2"}\n{"phase": "mem')        # a line still being written
    events, offset2 = progress.read_new(target, offset)
    assert [e["phase"] for e in events] == ["memory"] and offset2 < target.stat().st_size


def test_the_load_meter_reports_other_processes_share():
    from bgeq_utils.core import env
    load = env.LoadMeter().stop()
    assert 0.0 <= load["other_cpu_share"] <= 1.0 and load["busy"] == (load["other_cpu_share"] > env.BUSY_SHARE)
