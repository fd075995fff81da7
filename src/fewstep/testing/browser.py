"""Open a report page in a real headless browser (Debian's chromium, driven through playwright's
API; no browser is downloaded) and say what a person would see: whether every image loaded,
the page's headings, and a screenshot."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """The path of an installed chromium-family browser, or None."""
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@dataclass
class PageView:
    title: str
    headings: list[str]
    images: int
    broken_images: list[str]  # sources that did not load or decode
    height: int  # of the whole page, in CSS pixels


def view_page(html: Path, screenshot: Path | None = None, width: int = 1280) -> PageView:
    """Load `html` from disk, wait for it, and report what rendered (optionally a full-page PNG)."""
    from playwright.sync_api import sync_playwright

    browser_path = find_browser()
    if browser_path is None:
        raise FileNotFoundError(f"no chromium-family browser on PATH ({', '.join(BROWSERS)}): tools/install_browser.sh")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            broken = page.evaluate(
                "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.getAttribute('src'))"
            )
            view = PageView(
                title=page.title(),
                headings=page.eval_on_selector_all("h1, h2, h3", "els => els.map(e => e.textContent.trim())"),
                images=page.evaluate("() => document.images.length"),
                broken_images=list(broken),
                height=int(page.evaluate("() => document.documentElement.scrollHeight")),
            )
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            return view
        finally:
            browser.close()
