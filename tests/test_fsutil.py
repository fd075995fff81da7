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
