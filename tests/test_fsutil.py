import pytest

from fewstep.fsutil import atomic_dir, atomic_write_text, hash_tree, tree_digest


def test_atomic_dir_keeps_old_output_on_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("v2")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_replaces_on_success(tmp_path):
    target = tmp_path / "out"
    for v in ("v1", "v2"):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text(v)
    assert (target / "a.txt").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_hashes_change_with_content(tmp_path):
    atomic_write_text(tmp_path / "d" / "x.txt", "1")
    before = tree_digest(tmp_path / "d")
    assert list(hash_tree(tmp_path / "d")) == ["x.txt"]
    atomic_write_text(tmp_path / "d" / "x.txt", "2")
    assert tree_digest(tmp_path / "d") != before


def test_an_existing_user_directory_is_never_replaced(tmp_path):
    """`compile -o DIR` onto a directory fewstep did not write is refused before any work, and
    the directory is left intact; --overwrite replaces it."""
    from typer.testing import CliRunner

    from fewstep.cli import app

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "keep.txt").write_text("hi")
    res = CliRunner().invoke(app, ["compile", "zoo:shapes-flash", "-o", str(out), "-t", "onnxruntime-cpu"])
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert (out / "keep.txt").read_text() == "hi" and (out / "sub").is_dir()
    res = CliRunner().invoke(app, ["distill", "zoo:shapes", "-o", str(out), "--steps", "2"])
    assert res.exit_code == 2 and "--overwrite" in res.output and (out / "keep.txt").exists()


def test_fewstep_outputs_and_empty_directories_may_be_replaced(tmp_path):
    import json

    from fewstep.fsutil import check_replaceable

    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_text(json.dumps({"fewstep_version": "0.1.0"}))
    check_replaceable(tmp_path / "bundle")
    check_replaceable(tmp_path / "missing")


def test_output_lock_refuses_a_second_writer_and_cleans_what_a_killed_one_left(tmp_path):
    from fewstep.fsutil import output_lock

    out = tmp_path / "bundle"
    stale = tmp_path / ".bundle.tmp-dead"
    stale.mkdir()
    (stale / "big.bin").write_bytes(b"x" * 100)
    (tmp_path / ".bundle.old-123").mkdir()
    other = tmp_path / ".other.tmp-live"
    other.mkdir()
    with output_lock(out):
        assert not stale.exists() and not (tmp_path / ".bundle.old-123").exists()
        assert other.exists()  # another output's temporaries are not ours
        with pytest.raises(RuntimeError, match="another fewstep process is writing"), output_lock(out):
            pass


def test_require_free_space_names_what_where_and_how_much(tmp_path, monkeypatch):
    from collections import namedtuple

    import fewstep.fsutil as fsutil
    from fewstep.fsutil import DiskSpaceError, require_free_space

    usage = namedtuple("usage", "total used free")
    seen = []

    def fake(path):
        seen.append(path)
        return usage(10 << 30, 9 << 30, 1 << 30)  # 1 GiB free

    monkeypatch.setattr(fsutil.shutil, "disk_usage", fake)
    require_free_space(tmp_path / "not" / "yet", 512 << 20, "w.bin")  # 0.5 GiB fits
    assert seen[-1] == tmp_path  # a folder not yet made: its nearest existing ancestor's disk
    with pytest.raises(DiskSpaceError) as e:
        require_free_space(tmp_path / "out", 2 << 30, "model.onnx")
    message = str(e.value)
    assert "model.onnx" in message and str(tmp_path / "out") in message
    assert "2.00 GiB" in message and "1.00 GiB are free" in message
    assert isinstance(e.value, OSError)
