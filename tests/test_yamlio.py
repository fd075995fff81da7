"""User YAML is bounded: alias bombs, depth, duplicates, binary and oversize files get named
errors fast, and recipe check exits 2 with them."""

import time

import pytest
from typer.testing import CliRunner

from fewstep.cli import app
from fewstep.yamlio import YamlInputError, load_mapping, load_yaml


def bomb(levels: int = 9) -> str:
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    prev = "a"
    for i in range(levels):
        name = f"l{i}"
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bomb(), "expands to more than"),
        ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'"),
        ("x: " + "[" * 80 + "]" * 80 + "\n", "nested deeper than"),
        ("a: [1, 2\n", "not valid YAML"),
    ],
    ids=["alias bomb", "duplicate key", "deep nesting", "syntax"],
)
def test_bad_yaml_is_named_quickly(tmp_path, content, message):
    path = tmp_path / "r.yaml"
    path.write_text(content)
    start = time.perf_counter()
    with pytest.raises(YamlInputError, match=message):
        load_yaml(path)
    assert time.perf_counter() - start < 2.0
    res = CliRunner().invoke(app, ["recipe", "check", str(path)])
    assert res.exit_code == 2 and message.split()[0] in res.output and "Traceback" not in res.output


def test_binary_directory_and_oversize_files(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(YamlInputError, match="not UTF-8"):
        load_yaml(tmp_path / "bin.yaml")
    with pytest.raises(YamlInputError, match="not a file"):
        load_yaml(tmp_path)
    (tmp_path / "big.yaml").write_text("a: " + "x" * (2 << 20))
    with pytest.raises(YamlInputError, match="at most"):
        load_yaml(tmp_path / "big.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(YamlInputError, match="mapping of fields, not a list"):
        load_mapping(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_mapping(tmp_path / "empty.yaml") == {}


def test_anchors_within_bounds_still_work(tmp_path):
    (tmp_path / "ok.yaml").write_text("base: &g {psnr_min: 30}\nimage: *g\n")
    assert load_yaml(tmp_path / "ok.yaml") == {"base": {"psnr_min": 30}, "image": {"psnr_min": 30}}
