"""The web page in a real headless Chromium (Debian's, driven by Playwright): upload the
bundled example faces, watch the progress finish, see the reconstruction, move the morph,
crossover and expression sliders and see each image change, download the latent.
Screenshots are kept in the test's folder (and in $I2S_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

import i2s

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here: apt install "
                                                         "chromium (CI installs it)")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(tmp_path, model_file):
    from i2s.web.app import create_app
    app = create_app(i2s.load_generator(model_file), tmp_path / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_upload_progress_morph_and_download(server, tmp_path):
    shots = Path(os.environ.get("I2S_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    faces = [str(i2s.example_path("faces", f"face_seed10{i}.png")) for i in (0, 1, 2)]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(server)
        page.wait_for_selector("#model:not(:empty)")
        assert "model" in page.inner_text("#model")
        page.set_input_files("#files", faces)
        page.fill("#steps", "6")
        page.click("#go")
        page.wait_for_function("document.querySelectorAll('.job .out img').length == 3",
                               timeout=120_000)
        statuses = page.locator(".job .status").all_inner_texts()
        assert all(s.startswith("done 6/6") for s in statuses), statuses
        assert page.eval_on_selector(".job progress", "p => p.value / p.max") == 1.0
        page.wait_for_function("document.querySelector('.job .out img').naturalWidth > 0")
        page.screenshot(path=str(shots / "1-embedded.png"), full_page=True)
        page.wait_for_function("document.getElementById('xkept').textContent != ''")
        page.fill("#xthreshold", "0")       # a 6-step tiny model moves every layer by < 1
        page.eval_on_selector("#xthreshold", "e => e.dispatchEvent(new Event('input'))")
        page.wait_for_function("document.getElementById('xkept').textContent"
                               ".startsWith('layers 0,')")
        for slider, img, value in (("t", "morph", 0), ("xlayer", "crossed", 1),
                                   ("xstrength", "expressed", 0)):
            page.wait_for_function(f"document.getElementById('{img}').src.startsWith('blob:')")
            page.wait_for_function(f"document.getElementById('{img}').naturalWidth > 0")
            before = page.locator(f"#{img}").screenshot()
            old = page.get_attribute(f"#{img}", "src")
            page.eval_on_selector(f"#{slider}", f"e => {{ e.value = {value}; "
                                                "e.dispatchEvent(new Event('input')) }")
            page.wait_for_function(f"document.getElementById('{img}').src != '{old}'")
            page.wait_for_function(f"document.getElementById('{img}').naturalWidth > 0")
            after = page.locator(f"#{img}").screenshot()
            assert before != after, slider             # the slider changed the image
        assert page.inner_text("#editerror") == ""
        page.screenshot(path=str(shots / "2-edited.png"), full_page=True)
        with page.expect_download() as download:
            page.locator(".job a[download]").first.click()
        saved = tmp_path / "latent.npz"
        download.value.save_as(saved)
        assert i2s.load_latent(saved).w.shape == (6, 32)
        browser.close()
