import json

import pytest

import fewstep.recipes.stages  # noqa: F401  (registers the real stages first)
from fewstep.recipes.context import STAGES
from fewstep.recipes.runner import run_recipe
from fewstep.recipes.schema import parse_recipe


class FakeEval:
    """Writes one file per run; fails on request, after writing part of its output."""

    def __init__(self):
        self.calls: list[int] = []
        self.fail_on: set[int] = set()

    def inputs(self, cfg, ctx):
        return {}

    def run(self, cfg, ctx, out):
        self.calls.append(cfg.steps)
        (out / "partial.txt").write_text("half")
        if cfg.steps in self.fail_on:
            raise KeyboardInterrupt("killed")
        (out / "metrics.json").write_text(json.dumps({"steps": cfg.steps}))
        return {"steps": cfg.steps}


@pytest.fixture
def fake(monkeypatch):
    impl = FakeEval()
    monkeypatch.setitem(STAGES, "eval", impl)
    return impl


RECIPE = {
    "name": "t",
    "stages": [
        {"kind": "eval", "steps": 1},
        {"kind": "eval", "steps": 2},
        {"kind": "eval", "steps": 3},
        {"kind": "report"},
    ],
}


def test_unchanged_stages_are_skipped(fake, tmp_path):
    rec = parse_recipe(RECIPE)
    first = run_recipe(rec, tmp_path, progress=False)
    assert [r.status for r in first] == ["ran"] * 4
    second = run_recipe(rec, tmp_path, progress=False)
    assert [r.status for r in second] == ["cached"] * 4
    assert fake.calls == [1, 2, 3]


def test_manifest_records_what_made_the_output(fake, tmp_path):
    run_recipe(parse_recipe(RECIPE), tmp_path, progress=False)
    m = json.loads((tmp_path / "eval-2" / "manifest.json").read_text())
    assert m["stage"] == "eval-2" and m["config"]["steps"] == 2 and m["fewstep_version"]
    assert set(m["outputs"]) == {"partial.txt", "metrics.json"} and len(m["outputs"]["metrics.json"]) == 64
    assert m["wall_time_s"] >= 0
    report = json.loads((tmp_path / "report" / "manifest.json").read_text())
    assert set(report["inputs"]) == {"eval-1", "eval-2", "eval-3"}


def test_killed_run_leaves_no_partial_output_and_resumes(fake, tmp_path):
    rec = parse_recipe(RECIPE)
    fake.fail_on = {2}
    with pytest.raises(KeyboardInterrupt):
        run_recipe(rec, tmp_path, progress=False)
    assert (tmp_path / "eval-1" / "manifest.json").exists()
    assert not (tmp_path / "eval-2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eval-2")]
    fake.fail_on = set()
    results = run_recipe(rec, tmp_path, progress=False)
    assert [r.status for r in results] == ["cached", "ran", "ran", "ran"]
    assert fake.calls == [1, 2, 2, 3]


def test_a_hard_killed_runs_temporary_outputs_are_cleaned_next_time(fake, tmp_path):
    """kill -9 skips the cleanup of a stage's temporary directory; the next run (holding the
    lock, so no live run owns it) removes it."""
    stale = tmp_path / ".eval-2.tmp-abc123"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "weights.bin").write_bytes(b"x" * 1000)
    keep = tmp_path / "notes"
    keep.mkdir()
    run_recipe(parse_recipe(RECIPE), tmp_path, progress=False)
    assert not stale.exists() and keep.exists()


def test_config_change_reruns_only_that_stage_and_dependents(fake, tmp_path):
    run_recipe(parse_recipe(RECIPE), tmp_path, progress=False)
    changed = json.loads(json.dumps(RECIPE))
    changed["stages"][2]["guidance"] = 7.0
    results = run_recipe(parse_recipe(changed), tmp_path, progress=False)
    assert [r.status for r in results] == ["cached", "cached", "ran", "ran"]


def test_force_reruns_a_stage_and_unknown_force_is_an_error(fake, tmp_path):
    rec = parse_recipe(RECIPE)
    run_recipe(rec, tmp_path, progress=False)
    results = run_recipe(rec, tmp_path, force={"eval-1"}, progress=False)
    assert results[0].status == "ran" and fake.calls == [1, 2, 3, 1]
    with pytest.raises(ValueError, match="unknown stage"):
        run_recipe(rec, tmp_path, force={"nope"}, progress=False)


def test_tampered_output_is_detected_and_rebuilt(fake, tmp_path):
    rec = parse_recipe(RECIPE)
    run_recipe(rec, tmp_path, progress=False)
    (tmp_path / "eval-1" / "metrics.json").write_text("tampered")
    results = run_recipe(rec, tmp_path, progress=False)
    assert results[0].status == "ran"
    assert json.loads((tmp_path / "eval-1" / "metrics.json").read_text()) == {"steps": 1}


def test_report_writes_html_and_json(fake, tmp_path):
    run_recipe(parse_recipe(RECIPE), tmp_path, progress=False)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["eval-1", "eval-2", "eval-3"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<table>" in html and "eval-3" in html
