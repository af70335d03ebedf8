"""`multimodal serve` in a real headless Chromium (Playwright drives Debian's `chromium` through its executable
path; `playwright install` is never needed). The server runs as `python -m multimodal serve` on 127.0.0.1, on a
free port, with a tiny random model built here. The page gets an image, a clip and a text; each result is waited
for and checked; a broken upload must show its message while the server stays up; and the page must load
nothing from any other host (no CDN, no analytics). Screenshots go to the test's temporary folder."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("gradio", reason="gradio is not installed (requirements.txt); `multimodal serve` needs it")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from ..multimodal.test_serve import LABELS, build_tiny_model, write_inputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
START_TIMEOUT_S = 90  # python, torch, gradio and the tiny model: ~10 s here
RESULT_TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: install Debian's `chromium` (make setup does) "
                                                         "or set MM_CHROMIUM to a Chromium executable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`multimodal serve` exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"`multimodal serve` did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_browser")
    model = build_tiny_model(root / "model")
    port, log = free_port(), root / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "multimodal", "serve", "--model", str(model),
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process, log)
        yield {"url": url, "process": process, "inputs": write_inputs(root), "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh page on the demo; every request it makes is recorded, and it is screenshotted when the test ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.goto(server["url"])
    expect(page.locator("#model")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    yield page
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    context.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def field_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def wait_for_value(page, elem_id: str) -> str:
    page.wait_for_function(
        "id => { const f = document.querySelector(`#${id} textarea, #${id} input`); return f && f.value.length > 0; }",
        arg=elem_id, timeout=RESULT_TIMEOUT_MS)
    return field_value(page, elem_id)


def test_caption_an_uploaded_image_with_heat_maps(page, server, tmp_path):
    open_tab(page, "Caption")
    upload(page, "caption-input", server["inputs"]["image"])
    expect(page.locator("#caption-input")).to_contain_text(re.compile(r"photo\s*\.png"), timeout=RESULT_TIMEOUT_MS)
    page.locator("#caption-run").click()
    text = wait_for_value(page, "caption-text")
    assert text  # the tiny random model's caption, or "(empty caption)"
    if text != "(empty caption)":
        expect(page.locator("#caption-heatmap img")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(page.locator("#caption-words")).to_contain_text("P(word)")
    page.screenshot(path=str(tmp_path / "caption.png"), full_page=True)


def test_transcribe_an_uploaded_clip_with_subtitle_files(page, server, tmp_path):
    open_tab(page, "Transcribe")
    upload(page, "transcribe-input", server["inputs"]["clip"])
    expect(page.locator("#transcribe-input audio, #transcribe-input .waveform-container, #transcribe-input button"
                        ).first).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    page.locator("#transcribe-run").click()
    assert wait_for_value(page, "transcribe-text")
    for suffix in ("srt", "vtt"):  # each a download link
        expect(page.locator(f"#transcribe-files a[href$='/clip.{suffix}']")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#transcribe-segments")).to_contain_text("start (s)")
    page.screenshot(path=str(tmp_path / "transcribe.png"), full_page=True)


def test_text_sentiment_attributions_and_entities(page, tmp_path):
    open_tab(page, "Text")
    page.locator("#text-input textarea").fill("Maria Lopez loved the film")
    page.locator("#text-run").click()
    attributions = page.locator("#text-attributions")
    expect(attributions).to_contain_text("Maria", timeout=RESULT_TIMEOUT_MS)
    expect(attributions).to_contain_text("attribution")
    shown = page.locator("#text-scores").inner_text()
    assert any(label in shown for label in LABELS), shown
    expect(page.locator("#text-entities")).to_contain_text("film")
    page.screenshot(path=str(tmp_path / "text.png"), full_page=True)


def test_a_broken_upload_shows_a_clear_message_and_the_server_stays_up(page, server, tmp_path):
    open_tab(page, "Caption")
    upload(page, "caption-input", server["inputs"]["bad_image"])
    expect(page.locator("#caption-input")).to_contain_text(re.compile(r"broken\s*\.png"), timeout=RESULT_TIMEOUT_MS)
    page.locator("#caption-run").click()
    message = page.locator("[data-testid=toast-text]", has_text="cannot read image file 'broken.png'")
    expect(message.first).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    assert "/tmp/" not in message.first.inner_text()  # the user's file name, not the server's copy
    page.wait_for_timeout(1000)  # the message slides in
    page.screenshot(path=str(tmp_path / "broken_upload.png"), full_page=True)
    assert server["process"].poll() is None, "the server died on a broken upload"

    open_tab(page, "Transcribe")  # a broken clip too; then a good request is still answered
    upload(page, "transcribe-input", server["inputs"]["bad_clip"])
    page.locator("#transcribe-run").click()
    expect(page.locator("[data-testid=toast-text]", has_text="cannot read audio file 'broken.wav'").first
           ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    open_tab(page, "Text")
    page.locator("#text-input textarea").fill("still here?")
    page.locator("#text-run").click()
    expect(page.locator("#text-attributions")).to_contain_text("still", timeout=RESULT_TIMEOUT_MS)
    assert server["process"].poll() is None


def test_the_page_loads_nothing_from_other_hosts(page, server):
    open_tab(page, "Transcribe")
    open_tab(page, "Text")
    page.wait_for_load_state("networkidle")
    hosts = {urlparse(url).hostname for url in page.requested if urlparse(url).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, f"the page fetched from {hosts - {'127.0.0.1'}}"
