"""The demo in a real browser: Debian's chromium driven by Playwright (no browser download), the bundled model.

Skipped when Playwright or chromium is missing, unless ALLSEEING_REQUIRE_BROWSER=1 (set by .ci/run), where a
missing browser fails the test instead. Screenshots of every state are saved in the test's temporary folder.
"""

import os
import shutil

import pytest
from PIL import Image

from allseeing.assets import BUNDLED_MODEL
from tests.serve.conftest import running_demo

pytestmark = pytest.mark.slow  # see pyproject.toml: the full run (.ci/run) includes it

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


@pytest.fixture
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url, width, height):
    """A page at ``url`` whose script errors and console errors (a refusal by the page's CSP, say) are collected."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")  # a 4xx answer the page shows on purpose
            and page.problems.append(message.text)
        ),
    )
    page.goto(url)
    page.wait_for_selector(".sample")
    return page


def answered(page, count):
    """Wait until ``count`` answers are complete (no string evaluation: the page's CSP forbids it)."""
    page.wait_for_selector(f":nth-match(.turn.assistant[data-state=done], {count})", timeout=120_000)


def drag(page, start, end):
    """Drag on the image from ``start`` to ``end``, fractions of its displayed size (outside 0..1 is off it)."""
    area = page.locator("#drawing").bounding_box()
    point = [(area["x"] + fx * area["width"], area["y"] + fy * area["height"]) for fx, fy in (start, end)]
    page.mouse.move(*point[0])
    page.mouse.down()
    page.mouse.move(*point[1], steps=8)
    page.mouse.up()


def no_sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_empty_page_region_answers_views_keyboard_and_a_bad_upload(bundled_model, browser, tmp_path):
    (tmp_path / "notes.png").write_text("this is text, not a picture")
    with running_demo(*bundled_model, max_new_tokens=256, samples=4) as server:
        page = open_page(browser, server.url, 1280, 900)

        # Empty: a drop zone, no picture (not even a broken one), nothing to ask yet.
        assert page.is_visible("#placeholder") and page.is_hidden("#picture") and page.is_hidden("#views-pane")
        assert page.is_disabled("#send") and page.is_hidden("#error")
        assert page.locator(".sample").count() == 5
        page.screenshot(path=tmp_path / "1-empty.png", full_page=True)

        page.click(".sample[data-sample=scene-1]")
        page.wait_for_selector("#frame:not([hidden])")
        assert page.get_attribute(".sample[data-sample=scene-1]", "aria-pressed") == "true"
        assert page.is_hidden("#placeholder") and page.is_enabled("#send")

        # A dragged region: a numbered chip, a marker in the question.
        drag(page, (0.02, 0.02), (0.5, 0.5))
        page.wait_for_selector("#regions .chip")
        assert page.input_value("#message") == "What is in this [region 1]?"
        # A drag from the image's edge outwards has no area inside it: refused in the page, nothing added.
        drag(page, (0.0, 0.3), (-0.2, 0.6))
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error-text") == "That region lies outside the image: drag across the picture itself."
        assert page.locator("#regions .chip").count() == 1
        assert "too thin" in page.evaluate("regionProblem([10, 10, 10.5, 90], [362, 252])")
        assert page.evaluate("readable('A <ref>cat</ref><box>[[1, 2, 3, 4]]</box> on <ref>a m')") == "A cat on a m"

        page.check("input[value=plain]", force=True)
        page.click("#send")
        answered(page, 1)
        # The question reads as words and a chip, not ReC tags; the region stays drawn on the image.
        question = page.locator(".turn.user").first
        assert "<ref>" not in question.inner_text() and question.locator(".chip").inner_text().strip() == "region 1"
        assert page.locator("#regions .chip").count() == 1
        page.evaluate("() => { document.getElementById('show-boxes').checked = false; paint(); }")  # the region alone
        area = page.locator("#drawing").bounding_box()
        edge = page.evaluate(
            "([x, y]) => document.getElementById('drawing').getContext('2d')"
            ".getImageData(Math.round(x * devicePixelRatio), Math.round(y * devicePixelRatio), 1, 1).data[3]",
            [0.02 * area["width"], 0.25 * area["height"]],
        )
        assert edge > 0, "the region's outline is no longer drawn"
        page.evaluate("() => { document.getElementById('show-boxes').checked = true; paint(); }")

        # A region drawn with the keyboard: Enter starts it, arrows move and resize it, Enter keeps it.
        page.focus("#drawing")
        for key in ("Enter", "ArrowRight", "Shift+ArrowDown", "Enter"):
            page.keyboard.press(key)
        page.wait_for_function("() => document.querySelectorAll('#regions .chip').length === 2")
        assert "[region 2]" in page.input_value("#message")

        # A scene-graph answer, asked with the keyboard: coloured phrases, boxes on the image, a graph cropped to
        # what it draws (no 480-pixel frame around one node).
        page.check("input[value=scene_graph]", force=True)
        page.fill("#message", "Generate the scene graph of this image.")
        page.press("#message", "Enter")
        answered(page, 2)
        assert page.locator(".turn.assistant").nth(1).locator(".phrase").count() >= 1
        assert page.is_visible("#views-pane") and page.locator("#graph svg .node").count() >= 1
        view_box = [float(v) for v in page.get_attribute("#graph svg", "viewBox").split()]
        assert view_box[2] < 480 and view_box[3] < 480
        assert page.locator("#graph svg").bounding_box()["height"] <= 362
        page.hover(".turn.assistant >> nth=1 >> .phrase >> nth=0")
        assert page.evaluate("state.highlight !== null")
        assert page.is_hidden("#error")
        page.screenshot(path=tmp_path / "2-answered.png", full_page=True)

        # A bad upload: a sentence in the page, the chat goes on with the same image.
        page.set_input_files("#upload", str(tmp_path / "notes.png"))
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error-text") == (
            "Could not open notes.png. This file is not an image the demo can read. "
            "Choose a PNG, JPEG, WebP, GIF or BMP image."
        )
        assert page.get_attribute(".sample[data-sample=scene-1]", "aria-pressed") == "true"
        page.screenshot(path=tmp_path / "3-error.png", full_page=True)
        page.check("input[value=grounded]", force=True)
        page.fill("#message", "What is in the image?")
        page.click("#send")
        answered(page, 3)
        assert page.is_hidden("#error") and page.locator(".turn.user").count() == 3
        assert no_sideways_scroll(page)

        # A good upload: a new chat on it, no sample named any more, the size kept said.
        Image.new("RGB", (1600, 1200), (40, 120, 200)).save(tmp_path / "photo.jpg")
        page.set_input_files("#upload", str(tmp_path / "photo.jpg"))
        page.wait_for_selector("#stage-help >> text=Your upload photo.jpg")
        assert "(1600 × 1200 px, kept at 1024 × 768)" in page.inner_text("#stage-help")
        assert page.locator(".sample[aria-pressed=true]").count() == 0
        assert page.locator(".turn").count() == 0 and page.locator("#regions .chip").count() == 0
        assert page.problems == []
    assert (tmp_path / "2-answered.png").stat().st_size > 10_000


def test_a_phone_and_a_question_queued_behind_another_chat(bundled_model, browser, tmp_path):
    with running_demo(*bundled_model, max_new_tokens=256, samples=4) as server:
        page = open_page(browser, server.url, 390, 844)
        assert no_sideways_scroll(page)
        page.screenshot(path=tmp_path / "1-phone-empty.png", full_page=True)
        page.click(".sample[data-sample=example-photo]")
        page.wait_for_selector("#frame:not([hidden])")
        assert no_sideways_scroll(page)
        drag(page, (0.3, 0.3), (0.7, 0.8))
        page.wait_for_selector("#regions .chip")

        # Another chat holds the model: the question shows its place in the queue, then its answer.
        another = server.app.store.queue.turn()
        another.__enter__()
        try:
            page.click("#send")
            page.wait_for_selector(".turn.assistant[data-state=queued]")
            assert "1 question from other chats ahead" in page.inner_text(".turn.assistant")
            page.screenshot(path=tmp_path / "2-phone-queued.png", full_page=True)
        finally:
            another.__exit__(None, None, None)
        answered(page, 1)
        assert page.locator(".turn.user .chip").count() == 1
        assert no_sideways_scroll(page)
        page.screenshot(path=tmp_path / "3-phone-answered.png", full_page=True)
        assert page.problems == []
