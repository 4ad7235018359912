"""The demo in a real browser: Debian's chromium driven by Playwright (no browser download), the bundled model.

Skipped when Playwright or chromium is missing, unless ALLSEEING_REQUIRE_BROWSER=1 (set by .ci/run), where a
missing browser fails the test instead.
"""

import os
import shutil

import pytest

from allseeing.assets import BUNDLED_MODEL
from tests.serve.conftest import running_demo

CHROMIUM = os.environ.get("ALLSEEING_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        sync_playwright = None
    if sync_playwright is None or CHROMIUM is None:
        reason = "needs the playwright package and Debian's chromium (apt-get install chromium)"
        if os.environ.get("ALLSEEING_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def bundled_model():
    from allseeing.model.build import load

    return load(BUNDLED_MODEL)


def test_upload_draw_ask_and_see_the_answer_on_the_image(bundled_model, tmp_path):
    sync_playwright = _browser_or_skip()
    (tmp_path / "notes.png").write_text("this is text, not a picture")
    with running_demo(*bundled_model, max_new_tokens=256, samples=4) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.goto(server.url)
            page.select_option("#sample", "scene-1")
            page.click("#use-sample")
            page.wait_for_selector("#stage:not([hidden])")

            # Draw a box over the image's upper-left quarter: a region reference is written into the question.
            area = page.locator("#drawing").bounding_box()
            page.mouse.move(area["x"] + 5, area["y"] + 5)
            page.mouse.down()
            page.mouse.move(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("document.getElementById('message').value.includes('</box>')")
            assert page.input_value("#message").startswith("What is in this <ref>region</ref><box>[[")
            page.check("input[value=plain]")
            page.click("#send")
            page.wait_for_function("document.querySelectorAll('.turn.assistant:not(.streaming)').length === 1")

            # A scene-graph answer: its objects drawn over the image, one view per relation, the graph drawn.
            page.check("input[value=scene_graph]")
            page.fill("#message", "Generate the scene graph of this image.")
            page.press("#message", "Enter")
            page.wait_for_function("document.querySelectorAll('.turn.assistant:not(.streaming)').length === 2")
            assert page.get_attribute("#overlay", "src").startswith("data:image/png;base64,")
            assert page.is_visible("#overlay")
            assert page.locator("#graph svg .node").count() >= 2
            assert page.locator("#relations figure").count() >= 1
            assert page.locator(".turn.assistant .phrase").count() >= 1
            assert page.is_hidden("#error")
            page.screenshot(path=tmp_path / "demo.png", full_page=True)

            # A bad upload: an error in the page, the chat goes on with the same image.
            page.set_input_files("#upload", str(tmp_path / "notes.png"))
            page.wait_for_selector("#error:not([hidden])")
            assert "not in an image format Pillow can read" in page.inner_text("#error")
            page.check("input[value=grounded]")
            page.fill("#message", "What is in the image?")
            page.click("#send")
            page.wait_for_function("document.querySelectorAll('.turn.assistant:not(.streaming)').length === 3")
            assert page.is_hidden("#error")
            assert page.locator(".turn.user").count() == 3
            page.screenshot(path=tmp_path / "demo-after-bad-upload.png", full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000
