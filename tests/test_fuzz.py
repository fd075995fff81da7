"""Fuzzing with hypothesis: recipes (mutations of every shipped recipe, and raw bytes), the CLI's
`recipe check`, and bundle manifests. Every input ends in a named error or a valid object: never
another exception type, never a hang. `make test` runs a fast subset; the `slow` variants run
2000+ examples each with fresh random seeds and print a tally (`pytest -m slow tests/test_fuzz.py -s`);
the fast ones are derandomized, so CI sees the same inputs every run."""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fewstep.recipes import Recipe, RecipeError, load_recipe, parse_recipe
from fewstep.runtime.bundle import Bundle, BundleError, read_manifest
from fewstep.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPES = [load_yaml(p) for p in sorted((ROOT / "recipes").rglob("*.yaml"))]
FAST, SLOW = 150, 2000
HANG_S = 5.0
TALLY: dict[str, Counter] = {}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["[/bold]", "[link=file:///etc/passwd]x[/link]", "../../etc", "/abs/path", "zoo:none", "-1"])
)
VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=12
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, bases):
    """A valid document with 1-3 random edits: a value replaced, a key deleted or a key added."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(VALUES)
    return doc


def _tally(name: str, outcome: str) -> None:
    TALLY.setdefault(name, Counter())[outcome] += 1


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def check_recipe(doc) -> None:
    start = time.perf_counter()
    try:
        recipe = parse_recipe(doc)
    except RecipeError as e:
        assert str(e).strip() and "Traceback" not in str(e)
        _tally("recipe mutations", "named error")
    else:
        assert isinstance(recipe, Recipe)
        dumped = recipe.model_dump(mode="json")
        assert _finite(dumped)  # nothing accepted holds NaN or infinity
        assert parse_recipe(dumped) == recipe  # accepted recipes round-trip
        _tally("recipe mutations", "accepted (valid)")
    assert time.perf_counter() - start < HANG_S


def check_recipe_bytes(tmp: Path, data: bytes) -> None:
    path = tmp / "r.yaml"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        load_recipe(path)
        _tally("recipe bytes", "accepted (valid)")
    except RecipeError:
        _tally("recipe bytes", "named error")
    assert time.perf_counter() - start < HANG_S


YAML_BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(lambda d: json.dumps(d).encode(), mutated(RECIPES)),
    st.sampled_from(
        [
            b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
            b"[" * 2000,
            b"name: x\nname: y\n",
            b"\xff\xfe",
            b"!!python/object:os.system ls",
        ]
    ),  # fmt: skip
)


@settings(max_examples=FAST, deadline=None, derandomize=True)
@given(mutated(RECIPES))
def test_recipe_mutations_end_in_a_named_error_or_a_valid_recipe(doc):
    check_recipe(doc)


@settings(
    max_examples=FAST, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=YAML_BYTES)
def test_recipe_bytes_end_in_a_named_error_or_a_valid_recipe(tmp_path, data):
    check_recipe_bytes(tmp_path, data)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=YAML_BYTES)
def test_cli_recipe_check_exits_0_or_2_without_a_traceback(tmp_path, data, capsys):
    from fewstep.cli import main

    path = tmp_path / "r.yaml"
    path.write_bytes(data)
    with pytest.raises(SystemExit) as e:
        main(["recipe", "check", str(path)])
    captured = capsys.readouterr()
    assert e.value.code in (0, None, 2), captured.err
    assert "Traceback" not in captured.err + captured.out
    _tally("cli recipe check", "exit 0" if e.value.code in (0, None) else "exit 2 (named error)")


# -- bundle manifests ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_bundle(built_bundles, tmp_path_factory):
    src, _ = built_bundles["onnxruntime-cpu"]
    dst = tmp_path_factory.mktemp("fuzz") / "bundle"
    shutil.copytree(src, dst)
    return dst, json.loads((dst / "manifest.json").read_text())


def check_manifest(bundle: Path, original: dict, doc, open_it: bool) -> None:
    (bundle / "manifest.json").write_text(json.dumps(doc))
    start = time.perf_counter()
    try:
        read_manifest(bundle, check=True)
        if open_it:
            Bundle.open(bundle, check=False)
        _tally("bundle manifests", "accepted")
    except BundleError as e:
        assert str(e).strip()
        _tally("bundle manifests", "named error")
    finally:
        (bundle / "manifest.json").write_text(json.dumps(original))
    assert time.perf_counter() - start < HANG_S


@settings(
    max_examples=FAST, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_manifest_mutations_are_refused_by_name_or_still_valid(fuzz_bundle, data):
    bundle, original = fuzz_bundle
    doc = data.draw(mutated([original]))
    check_manifest(bundle, original, doc, open_it=data.draw(st.booleans()) and data.draw(st.booleans()))


# -- slow: the same properties at 2000+ examples each, with a tally ----------------------------------


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None)
@given(mutated(RECIPES))
def test_slow_recipe_mutations(doc):
    check_recipe(doc)


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=YAML_BYTES)
def test_slow_recipe_bytes(tmp_path, data):
    check_recipe_bytes(tmp_path, data)


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_slow_manifest_mutations(fuzz_bundle, data):
    bundle, original = fuzz_bundle
    check_manifest(bundle, original, data.draw(mutated([original])), open_it=data.draw(st.booleans()))


@pytest.mark.slow
def test_slow_zz_print_tally():
    """Runs last in this module: the counts behind docs/benchmarks.md "Reliability"."""
    print("\nfuzz tally:", json.dumps({k: dict(v) for k, v in TALLY.items()}, indent=2))
    assert TALLY
