"""`multimodal serve`: the models in a web page (Gradio), on the user's machine, offline.

One tab per task, and a model picker above them:
    Caption     an image -> its caption, and each caption word's heat map over the image (`model.explain`)
    Transcribe  an uploaded or recorded clip -> the transcript, its timestamped segments, SRT and VTT files
    Text        a text -> sentiment with every label's probability and the words it relied on (integrated
                gradients), and the entities found, highlighted in the text
    picker      "auto" (each task's shipped model, `shipped.DEFAULT_MODELS`), a shipped model by name, or a
                checkpoint / run dir typed in. A default model that is not shipped yet is listed as such, and a
                tab that needs it says so and names the way out (pick a checkpoint dir).

The task functions (`caption_image`, `transcribe_audio`, `analyze_text`) know nothing of Gradio: they take a
`Models` cache, the picker's value and the input, and return what the page shows. `build_app` wires them to the
page: a bad input (not an image, not audio, an empty text, a model that lacks the task) becomes a `gr.Error`
whose message the page shows, and the server carries on. Requests queue: at most CONCURRENCY of one kind run
at once (the CPU is the limit) and each model runs one request at a time (explanations hook into its layers).
Nothing comes from a CDN: Gradio serves its own scripts and the default theme's fonts, server-side rendering
(Node) is off, and so are analytics (GRADIO_ANALYTICS_ENABLED=False, set before Gradio is imported).
"""

from __future__ import annotations

import html
import io
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this once

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

import multimodal as mm  # noqa: E402
from multimodal import shipped  # noqa: E402
from tasks.subtitles import write as write_subtitles  # noqa: E402

log = logging.getLogger(__name__)

AUTO = "auto"  # the picker's default: each task's shipped model
HOST = "127.0.0.1"  # loopback only unless asked: the demo has no authentication
PORT = 7860
CONCURRENCY = 2  # requests of one kind (event) running at once: one per CPU core of the machines we target
QUEUE_SIZE = 100  # requests waiting beyond that; more are refused with "queue full"
MAX_MODELS = 4  # loaded models kept in memory, least recently used dropped first
MAX_UPLOAD = "100mb"  # bigger uploads are refused before they reach a model
MAX_TEXT_CHARS = 5000  # a longer text is refused (the heads read at most a few hundred tokens anyway)
TAB_OF_TASK = {"caption": "Caption", "transcribe": "Transcribe", "classify": "Text (sentiment)", "tag": "Text (entities)"}
USER_ERRORS = (ValueError, FileNotFoundError, OSError)  # bad input or a bad model choice: shown as the message

Step = Callable[[float, str], None]  # progress callback: (fraction done in [0, 1], what is happening)


def _no_progress(fraction: float, desc: str) -> None:
    return None


# ---------------------------------------------------------------------------------------------------------
# Models: loaded on first use, kept, one request at a time each


class Models:
    """The models the picker names, loaded once and kept (at most MAX_MODELS); each with its own lock."""

    def __init__(self, max_models: int = MAX_MODELS):
        self.max_models = max_models
        self._loaded: OrderedDict[str, tuple[Any, threading.Lock]] = OrderedDict()
        self._loading = threading.Lock()

    def resolve(self, choice: str | None, task: str) -> str:
        """The model name or dir that `choice` means for `task` ("auto": the task's shipped model)."""
        choice = (choice or AUTO).strip()
        if choice != AUTO:
            return choice
        name = shipped.DEFAULT_MODELS[task]
        if name not in shipped.names():
            raise ValueError(f"{TAB_OF_TASK[task]}: the default model '{name}' is not shipped yet; pick a checkpoint "
                             f"or run dir in the model picker (e.g. one trained with `multimodal train`)")
        return name

    @contextmanager
    def use(self, choice: str | None, task: str) -> Iterator[Any]:
        """The model for `task`, held for this request alone."""
        name = self.resolve(choice, task)
        with self._loading:  # one load at a time: two requests for a new model load it once
            if name not in self._loaded:
                self._loaded[name] = (mm.load(name), threading.Lock())
                while len(self._loaded) > self.max_models:
                    self._loaded.popitem(last=False)
            self._loaded.move_to_end(name)
            model, lock = self._loaded[name]
        with lock:
            yield model


def can_do(model) -> list[str]:
    """The tasks a loaded model can serve: caption and transcribe by its encoders, classify and tag by its heads."""
    return [task for task, ok in (("caption", "image" in model.encoders), ("transcribe", "audio" in model.encoders),
                                  ("classify", "classify" in model.heads), ("tag", "tag" in model.heads)) if ok]


def picker_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: auto, each shipped model, and each default model that is not shipped yet."""
    names = shipped.names()
    missing = [n for n in dict.fromkeys(shipped.DEFAULT_MODELS.values()) if n not in names]
    return ([("auto: each task's shipped model", AUTO)] + [(n, n) for n in names]
            + [(f"{n} (not shipped yet)", n) for n in missing])


def describe(models: Models, choice: str | None) -> str:
    """Markdown: what the picked model does, by tab (loads it, so a bad dir is reported at once)."""
    choice = (choice or AUTO).strip()
    if choice == AUTO:
        lines = [f"- {TAB_OF_TASK[t]}: `{n}`" + ("" if n in shipped.names() else " (not shipped yet: pick a checkpoint dir)")
                 for t, n in shipped.DEFAULT_MODELS.items()]
        return "Each tab uses its task's shipped model:\n" + "\n".join(lines)
    with models.use(choice, "classify") as model:
        tasks = can_do(model)
    tabs = ", ".join(TAB_OF_TASK[t] for t in tasks) or "none of the tabs"
    return f"`{choice}` serves: {tabs}."


def _require(model, task: str, choice: str) -> None:
    if task not in can_do(model):
        needs = {"caption": "image encoder", "transcribe": "audio encoder", "classify": "classification head",
                 "tag": "tagging head"}[task]
        raise ValueError(f"model '{choice}' has no {needs}, so it cannot {task}; pick another in the model picker")


# ---------------------------------------------------------------------------------------------------------
# The three tasks, without Gradio


@dataclass
class CaptionView:
    text: str
    heatmap: Image.Image | None  # the image and one heat map panel per content word (None for an empty caption)
    words: list[list[Any]]  # [word, P(word | image, words before), peak cell "row, col"] per caption word


def caption_image(models: Models, choice: str | None, path: str, step: Step = _no_progress) -> CaptionView:
    """Caption the image file at `path`, with each word's heat map."""
    step(0.05, "loading the model")
    with models.use(choice, "caption") as model:
        _require(model, "caption", choice or AUTO)
        step(0.2, "captioning")
        result = model.caption(path)
        if result.error:
            raise ValueError(result.error)
        if not result.text.strip():
            return CaptionView(text="", heatmap=None, words=[])
        step(0.5, "heat maps: where each word looked")
        explanation = model.explain([path], task="caption", target=[result.text])[0]
    step(0.9, "drawing")
    heatmap = Image.open(io.BytesIO(explanation.png_bytes()))
    rows = [[w.word, round(w.probability, 3), _peak_cell(w.heatmap)] for w in explanation.words]
    return CaptionView(text=result.text, heatmap=heatmap, words=rows)


def _peak_cell(heatmap) -> str:
    row, col = divmod(int(heatmap.argmax()), heatmap.shape[1])  # heatmap (H, W)
    return f"{row}, {col}"


@dataclass
class TranscriptView:
    text: str
    segments: list[list[Any]]  # [start_s, end_s, text] per segment
    files: list[str]  # the .srt and the .vtt
    warning: str | None = None  # the file was transcribed, but something about it was wrong (e.g. cut short)


def transcribe_audio(models: Models, choice: str | None, path: str, out_dir: str | Path,
                     step: Step = _no_progress) -> TranscriptView:
    """Transcribe the audio file at `path`; its subtitles are written into `out_dir` as STEM.srt and STEM.vtt."""
    step(0.05, "loading the model")
    with models.use(choice, "transcribe") as model:
        _require(model, "transcribe", choice or AUTO)
        step(0.2, "transcribing")
        result = model.transcribe(path)
    if result.error:
        raise ValueError(result.error)
    step(0.9, "writing subtitles")
    stem = Path(path).stem or "audio"
    files = [str(write_subtitles(result.segments, Path(out_dir) / f"{stem}.{fmt}", fmt)) for fmt in ("srt", "vtt")]
    segments = [[round(s.start_s, 2), round(s.end_s, 2), s.text] for s in result.segments]
    return TranscriptView(text=result.text, segments=segments, files=files, warning=result.warning)


@dataclass
class TextView:
    scores: dict[str, float] | None  # label -> probability, None when no model classifies
    attributions_html: str  # the text with each word shaded by its attribution to the predicted label
    entities: dict[str, Any]  # {"text", "entities": [{"entity", "start", "end"}]} (character offsets)
    notes: list[str] = field(default_factory=list)  # what was not done, and why


def analyze_text(models: Models, choice: str | None, text: str, step: Step = _no_progress) -> TextView:
    """Sentiment (with word attributions) and entities of `text`, from whichever models the choice provides."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: type or paste a sentence")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are served here")
    view = TextView(scores=None, attributions_html="", entities={"text": text, "entities": []})
    done = 0
    for task, label in (("classify", "sentiment"), ("tag", "entities")):
        step(0.1 + 0.4 * done, f"{label}: loading the model")
        try:
            name = models.resolve(choice, task)
        except ValueError as e:  # auto, and this task's model is not shipped: the other task still runs
            view.notes.append(str(e))
            continue
        with models.use(name, task) as model:
            if task not in can_do(model):
                view.notes.append(f"{TAB_OF_TASK[task]}: model '{name}' has no {'classification' if task == 'classify' else 'tagging'} head")
                continue
            step(0.2 + 0.4 * done, label)
            if task == "classify":
                prediction = model.classify(text)
                view.scores = dict(prediction.probabilities)
                view.attributions_html = model.explain([text], task="classify")[0].html_block()
            else:
                view.entities["entities"] = [{"entity": e.label, "start": e.start, "end": e.end} for e in model.tag(text)]
        done += 1
    if not done:
        raise ValueError("neither sentiment nor entities can be served: " + " ".join(view.notes))
    return view


# ---------------------------------------------------------------------------------------------------------
# The page


@contextmanager
def _shown_errors(upload: str | None = None) -> Iterator[None]:
    """Exceptions become a message on the page; the server carries on."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as e:
        raise gr.Error(_message(e, upload), title="Cannot do that", print_exception=False) from e
    except Exception as e:  # a bug: logged with its traceback, reported briefly
        log.exception("request failed")
        raise gr.Error(f"internal error ({type(e).__name__}: {_message(e, upload)}); the server log has the details",
                       title="Internal error") from e


def _message(error: Exception, upload: str | None) -> str:
    """The error's first line, HTML-escaped (the page renders it as HTML), the upload named by its own file name
    rather than the server's copy of it."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if upload:
        text = text.replace(upload, Path(upload).name)
    return html.escape(text)


def _progress(progress: gr.Progress) -> Step:
    return lambda fraction, desc: progress(fraction, desc=desc)


def build_app(models: Models | None = None, model: str | None = None) -> gr.Blocks:
    """The page: the picker (starting at `model`, else auto) and the three tabs."""
    models = models or Models()
    first = model or AUTO

    def on_pick(choice: str) -> str:
        with _shown_errors():
            return describe(models, choice)

    def on_caption(choice: str, path: str | None, progress=gr.Progress()):
        with _shown_errors(path):
            if not path:
                raise ValueError("no image: upload one first")
            view = caption_image(models, choice, path, _progress(progress))
            return view.text or "(empty caption)", view.heatmap, view.words

    def on_transcribe(choice: str, path: str | None, progress=gr.Progress()):
        with _shown_errors(path):
            if not path:
                raise ValueError("no audio: upload or record a clip first")
            view = transcribe_audio(models, choice, path, tempfile.mkdtemp(prefix="mm-serve-"), _progress(progress))
            if view.warning:
                gr.Warning(view.warning)
            return view.text or "(no speech found)", view.segments, view.files

    def on_text(choice: str, text: str, progress=gr.Progress()):
        with _shown_errors():
            view = analyze_text(models, choice, text, _progress(progress))
            notes = "\n".join(f"- {n}" for n in view.notes)
            return view.scores, view.attributions_html, view.entities, notes

    with gr.Blocks(title="multimodal", analytics_enabled=False) as app:
        gr.Markdown("# multimodal\nText, images and audio through one architecture, on this machine.")
        with gr.Row():
            picker = gr.Dropdown(picker_choices(), value=first, allow_custom_value=True, scale=2,
                                 label="Model: a shipped name, or type a checkpoint / run dir", elem_id="model")
            about = gr.Markdown(describe(models, first), elem_id="model-about")  # loads --model: a bad one fails here
        picker.change(on_pick, picker, about, concurrency_limit=1)

        with gr.Tab("Caption", elem_id="tab-caption"):
            with gr.Row():
                image = gr.File(label="Image (any format Pillow reads)", file_types=["image"], type="filepath",
                                elem_id="caption-input")
                with gr.Column():
                    caption = gr.Textbox(label="Caption", interactive=False, elem_id="caption-text")
                    heatmap = gr.Image(label="Where each word looked", type="pil", interactive=False,
                                       elem_id="caption-heatmap")
                    words = gr.Dataframe(headers=["word", "P(word)", "peak cell (row, col)"], interactive=False,
                                         elem_id="caption-words")
            gr.Button("Caption", variant="primary", elem_id="caption-run").click(
                on_caption, [picker, image], [caption, heatmap, words], api_name="caption")

        with gr.Tab("Transcribe", elem_id="tab-transcribe"):
            with gr.Row():
                audio = gr.Audio(label="Audio: upload or record", sources=["upload", "microphone"], type="filepath",
                                 elem_id="transcribe-input")
                with gr.Column():
                    transcript = gr.Textbox(label="Transcript", interactive=False, elem_id="transcribe-text")
                    segments = gr.Dataframe(headers=["start (s)", "end (s)", "text"], interactive=False,
                                            elem_id="transcribe-segments")
                    subtitles = gr.File(label="Subtitles (SRT, VTT)", file_count="multiple", interactive=False,
                                        elem_id="transcribe-files")
            gr.Button("Transcribe", variant="primary", elem_id="transcribe-run").click(
                on_transcribe, [picker, audio], [transcript, segments, subtitles], api_name="transcribe")

        with gr.Tab("Text", elem_id="tab-text"):
            with gr.Row():
                text = gr.Textbox(label="Text", lines=4, placeholder="A sentence, a review, a paragraph...",
                                  elem_id="text-input")
                with gr.Column():
                    scores = gr.Label(label="Sentiment", elem_id="text-scores")
                    attributions = gr.HTML(label="Words it relied on (green: towards the label, red: against)",
                                           elem_id="text-attributions")
                    entities = gr.HighlightedText(label="Entities", elem_id="text-entities")
                    notes = gr.Markdown(elem_id="text-notes")
            gr.Button("Analyze", variant="primary", elem_id="text-run").click(
                on_text, [picker, text], [scores, attributions, entities, notes], api_name="text")

    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def launch(app: gr.Blocks, host: str = HOST, port: int = PORT, block: bool = True) -> None:
    """Serve `app` at http://HOST:PORT/ (no share link, no Node renderer, no analytics, no MCP server)."""
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False, pwa=False,
               enable_monitoring=False, max_file_size=MAX_UPLOAD, prevent_thread_lock=not block, run_history=False,
               footer_links=["api", "settings"])


def serve(model: str | None = None, host: str = HOST, port: int = PORT) -> None:
    """`multimodal serve`: build the page and serve it until interrupted."""
    launch(build_app(model=model), host, port)
