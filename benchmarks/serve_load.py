"""Load on `multimodal serve`: 100 requests, 10 at a time, over loopback, mixing the three tabs and broken uploads.

    python benchmarks/serve_load.py                                   # shipped sentiment-en and speech-en, tiny captioner
    python benchmarks/serve_load.py --caption-model runs/caption/best --screenshots benchmarks/results

Starts `python -m multimodal serve` (picker "auto": the shipped models) on a free port of 127.0.0.1, then sends
requests through Gradio's own client, as the page does (the queue, uploads, the same endpoints). Of every 10
requests: 3 texts (sentiment with attributions, entities), 3 clips (espeak-ng sentences, 2-4 s), 2 images, one
broken image and one broken clip. Captions come from --caption-model; without it, from a tiny random captioner
built here (configs/tiny.yaml: the caption path at work, its words meaningless), as no captioner ships yet.
Each model is loaded by one warm-up request per task first (timed, reported apart). A good request must be
answered, a broken upload must come back as its error message; anything else counts as an error.
Reports latency percentiles per kind, errors, throughput, and the server's peak resident memory (VmHWM).
`--screenshots DIR` also drives each tab in headless Chromium and saves DIR/serve_{caption,transcribe,text}.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

MIX = ["text", "transcribe", "caption", "text", "transcribe", "bad_image", "text", "caption", "transcribe", "bad_clip"]
SENTENCES = ["the weather is lovely today", "please call me back tomorrow morning",
             "she bought three apples at the market", "we will meet at the station"]
TEXTS = ["I loved every minute of this film.", "A dull, lifeless script and wooden acting.",
         "Maria Lopez moved to Paris in March.", "Not great, not terrible, just fine."]
PERCENTILES = (50, 90, 99)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_inputs(directory: Path) -> dict[str, list[Path]]:
    """Spoken clips (espeak-ng), images, and broken files of each kind."""
    from PIL import Image

    rng = np.random.default_rng(0)
    clips = []
    for i, sentence in enumerate(SENTENCES):
        clips.append(directory / f"clip{i}.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(clips[-1]), sentence], check=True)
    images = []
    for i in range(4):
        images.append(directory / f"image{i}.png")
        Image.fromarray(rng.integers(0, 256, (96 + 16 * i, 128, 3), dtype=np.uint8)).save(images[-1])  # (H, W, C)
    (directory / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (directory / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE nothing")
    return {"clip": clips, "image": images, "bad_image": [directory / "broken.png"],
            "bad_clip": [directory / "broken.wav"]}


def tiny_captioner(directory: Path) -> Path:
    import multimodal as mm

    return mm.build(ROOT / "configs/tiny.yaml", ["encoders.audio=null"]).save(directory)


def start_server(port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "multimodal", "serve", "--port", str(port)], cwd=ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not answer within 180 s")


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of process `pid` in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Requests:
    """One Gradio client per worker thread; `send(kind, i)` returns (latency_s, outcome)."""

    def __init__(self, url: str, inputs: dict[str, list[Path]], caption_model: str):
        self.url, self.inputs, self.caption_model = url, inputs, caption_model
        self.local = threading.local()

    def client(self):
        from gradio_client import Client

        if not hasattr(self.local, "client"):
            self.local.client = Client(self.url, verbose=False)
        return self.local.client

    def send(self, kind: str, i: int) -> tuple[float, str]:
        from gradio_client import handle_file

        client, pick = self.client(), lambda key: str(self.inputs[key][i % len(self.inputs[key])])
        start = time.perf_counter()
        try:
            if kind == "text":
                scores, html, _, _ = client.predict("auto", TEXTS[i % len(TEXTS)], api_name="/text")
                ok = bool(scores and scores.get("label")) and "<span" in html
            elif kind == "transcribe":
                text, _, files = client.predict("auto", handle_file(pick("clip")), api_name="/transcribe")
                ok = bool(text) and len(files) == 2
            elif kind == "caption":
                text, _, _ = client.predict(self.caption_model, handle_file(pick("image")), api_name="/caption")
                ok = bool(text)
            else:
                call = ("/caption", self.caption_model) if kind == "bad_image" else ("/transcribe", "auto")
                client.predict(call[1], handle_file(pick(kind)), api_name=call[0])
                ok = False  # a broken upload that "succeeded" is an error
            outcome = "ok" if ok else "error: wrong answer"
        except Exception as e:  # gradio_client raises AppError with the page's message
            expected = kind.startswith("bad_") and "cannot read" in str(e)
            outcome = "refused as expected" if expected else f"error: {type(e).__name__}: {str(e)[:200]}"
        return time.perf_counter() - start, outcome


def summary(results: list[tuple[str, float, str]], wall_s: float) -> dict:
    by_kind: dict[str, dict] = {}
    for kind in dict.fromkeys(k for k, _, _ in results):
        latencies = np.array([t for k, t, _ in results if k == kind])
        errors = [o for k, _, o in results if k == kind and o.startswith("error")]
        by_kind[kind] = {"n": len(latencies), "errors": len(errors), "first_errors": errors[:3],
                         **{f"p{p}_s": float(np.percentile(latencies, p)) for p in PERCENTILES},
                         "max_s": float(latencies.max())}
    every = np.array([t for _, t, _ in results])
    return {"n": len(results), "errors": sum(v["errors"] for v in by_kind.values()), "wall_s": wall_s,
            "requests_per_s": len(results) / wall_s,
            **{f"p{p}_s": float(np.percentile(every, p)) for p in PERCENTILES}, "by_kind": by_kind}


def screenshots(url: str, inputs: dict[str, list[Path]], caption_model: str, out: Path) -> list[Path]:
    """Each tab with one answered request, as a user sees it, in headless Chromium."""
    from playwright.sync_api import expect, sync_playwright

    chromium = os.environ.get("MM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--screenshots needs Chromium (Debian's `chromium`, or MM_CHROMIUM)")
    out.mkdir(parents=True, exist_ok=True)
    shots, wait = [], 120_000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.locator("#model input").fill(caption_model)
        page.locator("#model input").press("Enter")
        page.locator("#caption-input input[type=file]").set_input_files(str(inputs["image"][0]))
        page.locator("#caption-run").click()
        expect(page.locator("#caption-heatmap img")).to_be_visible(timeout=wait)
        shots.append(out / "serve_caption.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.locator("#model input").fill("auto")
        page.locator("#model input").press("Enter")
        page.get_by_role("tab", name="Transcribe").click()
        page.locator("#transcribe-input input[type=file]").set_input_files(str(inputs["clip"][1]))
        page.wait_for_timeout(1500)  # the upload, then the waveform
        page.locator("#transcribe-run").click()
        expect(page.locator("#transcribe-files a[href$='.vtt']")).to_be_visible(timeout=wait)
        shots.append(out / "serve_transcribe.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.get_by_role("tab", name="Text").click()
        page.locator("#text-input textarea").fill("A warm, funny film: I loved every minute of it.")
        page.locator("#text-run").click()
        expect(page.locator("#text-attributions")).to_contain_text("attribution", timeout=wait)
        page.wait_for_timeout(1000)
        shots.append(out / "serve_text.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()
    return shots


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=10, help="requests in flight at once")
    p.add_argument("--caption-model", help="a captioning checkpoint dir (default: a tiny random one built here)")
    p.add_argument("--screenshots", metavar="DIR", help="also save DIR/serve_{caption,transcribe,text}.png")
    p.add_argument("--out", help="write the figures here as JSON")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    inputs = write_inputs(work)
    caption_model = args.caption_model or str(tiny_captioner(work / "tiny_captioner"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    server = start_server(port, work / "server.log")
    print(f"server up in {time.perf_counter() - started:.1f} s at {url} (log: {work / 'server.log'})")
    try:
        requests = Requests(url, inputs, caption_model)
        warmup = {kind: requests.send(kind, 0) for kind in ("text", "transcribe", "caption")}
        for kind, (seconds, outcome) in warmup.items():
            print(f"warm-up {kind:<10} {seconds:6.2f} s  {outcome}  (loads the model)")
        kinds = [MIX[i % len(MIX)] for i in range(args.requests)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(requests.send, kinds, range(len(kinds))))
        wall_s = time.perf_counter() - started
        rss_mb, peak_mb = peak_rss_mb(server.pid)
        alive = server.poll() is None
        shots = screenshots(url, inputs, caption_model, Path(args.screenshots)) if args.screenshots else []
    finally:
        server.terminate()
        server.wait(timeout=30)

    figures = summary([(k, t, o) for k, (t, o) in zip(kinds, answers)], wall_s)
    figures.update(concurrency=args.concurrency, server_rss_mb=rss_mb, server_peak_rss_mb=peak_mb, server_alive=alive,
                   warmup_s={k: t for k, (t, _) in warmup.items()}, caption_model=args.caption_model or "tiny random")
    print(f"\n{figures['n']} requests, {args.concurrency} at a time, in {wall_s:.1f} s ({figures['requests_per_s']:.2f}/s); "
          f"errors: {figures['errors']}; server alive after: {alive}")
    print(f"{'kind':<11} {'n':>3} {'errors':>6} " + " ".join(f"{f'p{q} (s)':>8}" for q in PERCENTILES) + f" {'max (s)':>8}")
    for kind, v in figures["by_kind"].items():
        print(f"{kind:<11} {v['n']:>3} {v['errors']:>6} " + " ".join(f"{v[f'p{q}_s']:>8.2f}" for q in PERCENTILES)
              + f" {v['max_s']:>8.2f}" + ("  " + "; ".join(v["first_errors"]) if v["first_errors"] else ""))
    print(f"{'all':<11} {figures['n']:>3} {figures['errors']:>6} "
          + " ".join(f"{figures[f'p{q}_s']:>8.2f}" for q in PERCENTILES))
    print(f"server memory: peak {peak_mb:,.0f} MB resident (VmHWM), {rss_mb:,.0f} MB at the end")
    for shot in shots:
        print(f"wrote {shot}")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))
    if figures["errors"] or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
