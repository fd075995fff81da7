import json

import pytest

from fewstep.recipes.runner import run_recipe
from fewstep.recipes.schema import RecipeError, parse_recipe
from fewstep.testing.browser import find_browser


def check_in_browser(html, n_images: int, shot) -> None:
    """The page renders in headless chromium: every image loads, the sections are there, and the
    screenshot is not blank."""
    if find_browser() is None:
        pytest.skip("no chromium on PATH (tools/install_browser.sh installs Debian's)")
    pytest.importorskip("playwright")
    import numpy as np
    from PIL import Image

    from fewstep.testing.browser import view_page

    view = view_page(html, screenshot=shot)
    assert view.images == n_images and view.broken_images == []
    assert "Gate table" in " ".join(view.headings) and view.height > 900
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.std() > 10  # text, tables and images, not an empty page


def test_compile_stage_writes_bundle_measurements_and_report(tiny_student_dir, tmp_path):
    recipe = parse_recipe(
        {
            "name": "t",
            "model": str(tiny_student_dir),
            "stages": [
                {
                    "kind": "compile",
                    "target": "onnxruntime-cpu",
                    "measure_repeats": 2,
                    "gates": {"num_prompts": 2, "distribution": {"enabled": False}},
                },
                {"kind": "report"},
            ],
        }
    )
    results = run_recipe(recipe, tmp_path / "run", progress=False)
    stage = tmp_path / "run" / "compile-onnxruntime-cpu-fp32"
    assert results[0].summary["gates_passed"] and (stage / "bundle" / "manifest.json").exists()
    metrics = json.loads((stage / "metrics.json").read_text())
    assert metrics["runtime"]["heavy_modules_imported"] == []
    assert 0 < metrics["runtime"]["peak_rss_mb"] < metrics["torch"]["peak_rss_mb"]
    assert metrics["runtime"]["latency_s"] > 0 and metrics["bundle_bytes"] > 0
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert report["stages"][0]["kind"] == "compile"
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    assert "Gate table" in html and "onnxruntime-cpu" in html and "teacher-gate-prompts.png" in html
    # every image the page references exists; plots, difference grids and "identical" instead of PSNR 100
    import re

    images = re.findall(r'src="([^"]+)"', html)
    assert images and all((tmp_path / "run" / "report" / src).is_file() for src in images)
    assert {"plot-bundles.png", "compile-onnxruntime-cpu-fp32-grid-diff.png"} <= set(images)
    assert ">100<" not in html and "identical" in html  # an fp32 ONNX bundle matches torch to the cap
    assert 'class="pass"' in html
    check_in_browser(tmp_path / "run" / "report" / "report.html", len(images), tmp_path / "page.png")
    # unchanged inputs: cached on re-run
    assert [r.status for r in run_recipe(recipe, tmp_path / "run", progress=False)] == ["cached", "cached"]


def test_recipe_compile_errors_name_field_and_allowed_values():
    with pytest.raises(RecipeError, match="allowed: .*openvino-cpu"):
        parse_recipe({"name": "t", "stages": [{"kind": "compile", "target": "tpu"}]})
    with pytest.raises(
        RecipeError,
        match=r"stages\.0\.gates\.image\.psnr_minimum: unknown field; allowed fields: "
        "lpips_max, lpips_network, psnr_min, ssim_min",
    ):
        parse_recipe({"name": "t", "stages": [{"kind": "compile", "gates": {"image": {"psnr_minimum": 3}}}]})
