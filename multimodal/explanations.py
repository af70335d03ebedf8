"""What an explanation holds, and how it shows: highlighted terminal text, a self-contained HTML page, a PNG.

`multimodal/explain.py` computes explanations; this file is their types (`TextExplanation`, `TagExplanation`,
`CaptionExplanation`, `SpeechExplanation`) and their rendering. ANSI colours go only to a terminal, and never with
NO_COLOR set; the HTML embeds its PNG, so a page is one file.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tasks.ner import Entity
ANSI_GREENS = (194, 157, 120, 83, 46)  # 256-colour backgrounds, weak -> strong support
ANSI_REDS = (224, 217, 210, 203, 196)  # weak -> strong against
SHADES = " ░▒▓█"  # terminal heat map cells, from nothing to the word's peak
FAINT = 0.1  # words below this share of the largest |attribution| stay uncoloured
STOP_WORDS = frozenset("a an the of and or on in at to with by for from is are its it this that there".split())
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.9}}
.t span{{padding:0 2px;border-radius:3px}} .ent{{border-bottom:3px solid #333}}
table{{border-collapse:collapse}} td,th{{padding:2px 10px;text-align:left}} .note{{color:#666;font-size:90%}}</style>
</head><body>
{body}
</body></html>
"""

# ---------------------------------------------------------------------------------------------------------
# What an explanation holds


@dataclass
class WordAttribution:
    word: str
    start: int  # character offset of the word in the text
    end: int  # one past its last character
    attribution: float  # > 0: the word pushed towards the label; < 0: against it


class Rendered:
    """What every explanation offers: `to_terminal()`, `to_html()` and `png_bytes()` (each kind its own), and the files."""

    def save_png(self, path: str | Path) -> Path:
        return _write(path, self.png_bytes())

    def save(self, directory: str | Path, stem: str) -> tuple[Path, Path]:
        """Write DIRECTORY/STEM.html and DIRECTORY/STEM.png; returns both paths."""
        page = _write(Path(directory) / f"{stem}.html", self.to_html().encode("utf-8"))
        return page, self.save_png(Path(directory) / f"{stem}.png")


@dataclass
class TextExplanation(Rendered):
    """Why a text got a label (or, with `entity`, why that span got its entity type)."""

    text: str
    label: str
    score: float  # P(label | text); for an entity, the sum of its tag logits
    baseline_score: float  # the same on the baseline text (special tokens kept, the rest pad tokens)
    words: list[WordAttribution]  # the words the model saw (up to the head's max_tokens), in text order
    convergence_delta: float  # sum of attributions - (score - baseline_score)
    entity: Entity | None = None

    def top(self, k: int = 3, sign: int = 1) -> list[WordAttribution]:
        """The k words that pushed hardest towards the label (sign 1) or against it (sign -1)."""
        ranked = sorted((w for w in self.words if sign * w.attribution > 0), key=lambda w: -sign * w.attribution)
        return ranked[:k]

    def heading(self) -> str:
        if self.entity is not None:
            return f"{self.label} {self.entity.text!r} ({self.entity.start}-{self.entity.end}), tag logits {self.score:.2f}"
        return f"{self.label} {self.score:.3f}"

    def to_terminal(self, color: bool | None = None) -> str:
        color = use_color() if color is None else color
        spans = [(w.start, w.end, w.attribution) for w in self.words]
        lines = [f"{self.heading()} | {_highlight(self.text, spans, color)}"]
        found = [f"{side}: {_listed(words)}" for side, words in (("for", self.top(3)), ("against", self.top(3, -1)))
                 if words]
        lines.append("  " + ("  ".join(found) or "(no word moved it)"))
        return "\n".join(lines)

    def html_block(self) -> str:
        scale = _scale([w.attribution for w in self.words])
        parts, cursor = [], 0
        entity = self.entity
        for w in self.words:
            parts.append(html.escape(self.text[cursor:w.start]))
            alpha = min(1.0, abs(w.attribution) / scale) * 0.8
            rgb = "0,160,60" if w.attribution > 0 else "220,40,40"
            inside = entity is not None and entity.start <= w.start and w.end <= entity.end
            parts.append(f'<span{" class=ent" if inside else ""} style="background:rgba({rgb},{alpha:.2f})" '
                         f'title="{w.attribution:+.4f}">{html.escape(self.text[w.start:w.end])}</span>')
            cursor = w.end
        parts.append(html.escape(self.text[cursor:]))
        rows = "".join(f"<tr><td>{html.escape(w.word)}</td><td>{w.start}-{w.end}</td><td>{w.attribution:+.4f}</td></tr>"
                       for w in sorted(self.words, key=lambda w: -abs(w.attribution))[:20])
        return (f"<h2>{html.escape(self.heading())}</h2>\n<p class=\"t\">{''.join(parts)}</p>\n"
                f"<p class=\"note\">green: towards {html.escape(self.label)}, red: against. Attributions add up to "
                f"{self.score - self.baseline_score:+.4f} (score {self.score:.4f} - baseline {self.baseline_score:.4f}), "
                f"integration error {self.convergence_delta:+.2e}.</p>\n"
                f"<table><tr><th>word</th><th>chars</th><th>attribution</th></tr>{rows}</table>")

    def to_html(self) -> str:
        return PAGE.format(title=html.escape(self.heading()), body=self.html_block())

    def draw(self, ax) -> None:
        """A bar per word, in text order (green for, red against)."""
        words = self.words[:60]
        values = [w.attribution for w in words]
        ax.barh(range(len(words)), values, color=["#2a2" if v > 0 else "#d33" for v in values])
        ax.set_yticks(range(len(words)), [w.word for w in words], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="#444", linewidth=0.8)
        ax.set_title(self.heading() + (" (first 60 words)" if len(self.words) > 60 else ""), fontsize=9)
        ax.set_xlabel("attribution (green: towards the label, red: against)")

    def png_bytes(self) -> bytes:
        return _figure_png([self], TextExplanation.draw, rows=max(2.0, 0.22 * len(self.words[:60]) + 1))


@dataclass
class TagExplanation(Rendered):
    """A text's entities, each with the words its tags relied on."""

    text: str
    entities: list[TextExplanation]

    def to_terminal(self, color: bool | None = None) -> str:
        if not self.entities:
            return f"{self.text}\n  (no entities)"
        return "\n".join(e.to_terminal(color) for e in self.entities)

    def to_html(self) -> str:
        nothing = f"<p>{html.escape(self.text)}</p><p>(no entities)</p>"
        body = "\n<hr>\n".join(e.html_block() for e in self.entities) or nothing
        return PAGE.format(title="entities: " + html.escape(self.text[:60]), body=body)

    def png_bytes(self) -> bytes:
        if not self.entities:
            return _figure_png([self.text], _draw_nothing_found)
        height = max(2.0, sum(0.22 * len(e.words[:60]) + 1 for e in self.entities))
        return _figure_png(self.entities, TextExplanation.draw, rows=height)


@dataclass
class CaptionWord:
    word: str
    start: int  # character offsets in the caption
    end: int
    probability: float  # P(word | image, the caption before it), teacher-forced
    baseline_probability: float  # the same with every image token replaced by their mean (a featureless image)
    heatmap: np.ndarray  # (H, W): each encoder cell's share of log(probability / baseline_probability), repeated
    convergence_delta: float  # sum over the adapter's tokens of the attributions - that log ratio
    content: bool  # not a function word ("a", "the", "of"...): drawn as a panel


@dataclass
class CaptionExplanation(Rendered):
    """Where in the image each word of a caption looked."""

    file: str | None
    caption: str
    image: np.ndarray  # (S, S, 3) in [0, 1]: the image as the encoder saw it (resized, cropped)
    words: list[CaptionWord]

    def panels(self) -> list[CaptionWord]:
        return [w for w in self.words if w.content] or self.words

    def to_terminal(self, color: bool | None = None) -> str:
        head = f"{self.file or 'image'}: {self.caption}" if self.caption else f"{self.file or 'image'}: (empty caption)"
        blocks = [[f"{w.word[:12]} {w.probability:.2f}", *_shaded(w.heatmap)] for w in self.panels()]
        lines = [head]
        for i in range(0, len(blocks), 6):  # six panels side by side
            group = blocks[i:i + 6]
            width = [max(len(s) for s in b) for b in group]
            lines += ["   ".join(b[r].ljust(wd) if r < len(b) else " " * wd for b, wd in zip(group, width))
                      for r in range(max(len(b) for b in group))]
        return "\n".join(lines)

    def to_html(self) -> str:
        picture = base64.b64encode(self.png_bytes()).decode("ascii")
        rows = "".join(f"<tr><td>{html.escape(w.word)}</td><td>{w.probability:.3f}</td><td>{_peak(w.heatmap)}</td></tr>"
                       for w in self.words)
        body = (f"<h2>{html.escape(self.caption or '(empty caption)')}</h2>\n"
                f"<p class=\"note\">{html.escape(self.file or 'image')}: each panel shows where in the image the word's "
                "log-probability rose (integrated gradients on the adapter's tokens from their mean, on the encoder's "
                f"grid).</p>\n<img alt=\"heat maps\" src=\"data:image/png;base64,{picture}\">\n"
                f"<table><tr><th>word</th><th>P(word)</th><th>peak cell (row, col)</th></tr>{rows}</table>")
        return PAGE.format(title=html.escape(self.caption or "caption"), body=body)

    def png_bytes(self) -> bytes:
        from matplotlib.figure import Figure

        panels = self.panels()
        n = 1 + len(panels)
        fig = Figure(figsize=(2.4 * min(n, 5), 2.6 * math.ceil(n / 5)))
        axes = [fig.add_subplot(math.ceil(n / 5), min(n, 5), i + 1) for i in range(n)]
        axes[0].imshow(self.image)
        axes[0].set_title(_wrap(self.caption or "(empty caption)"), fontsize=8)
        size = self.image.shape[:2]
        for ax, w in zip(axes[1:], panels):
            ax.imshow(self.image)
            ax.imshow(_overlay(_upsampled(w.heatmap, size)))
            ax.set_title(f"{w.word} (p={w.probability:.2f})", fontsize=9)
        for ax in axes:
            ax.axis("off")
        return _png(fig)


@dataclass
class SpeechExplanation(Rendered):
    """When each word of a transcript was spoken."""

    file: str | None
    text: str
    words: list[Any]  # tasks.long_audio.Word: (text, start_s, end_s)
    waveform: np.ndarray = field(repr=False)  # (N,) at `sample_rate`
    sample_rate: int = 16000

    def to_terminal(self, color: bool | None = None) -> str:
        color = use_color() if color is None else color
        timed = [f"{w.start_s:6.2f}-{w.end_s:6.2f}  {w.text}" for w in self.words]
        if color:  # alternate two backgrounds so word boundaries show in the text
            shown = " ".join(f"\x1b[30;48;5;{(153, 223)[i % 2]}m{w.text}\x1b[0m" for i, w in enumerate(self.words))
        else:
            shown = self.text
        return "\n".join([f"{self.file or 'audio'}: {shown or '(no words)'}", *("  " + t for t in timed)])

    def to_html(self) -> str:
        picture = base64.b64encode(self.png_bytes()).decode("ascii")
        words = " ".join(f'<span title="{w.start_s:.2f}-{w.end_s:.2f} s">{html.escape(w.text)}</span>' for w in self.words)
        rows = "".join(f"<tr><td>{html.escape(w.text)}</td><td>{w.start_s:.2f}</td><td>{w.end_s:.2f}</td></tr>"
                       for w in self.words)
        body = (f"<h2>{html.escape(self.file or 'audio')}</h2>\n<p class=\"t\">{words or '(no words)'}</p>\n"
                f"<img alt=\"waveform\" src=\"data:image/png;base64,{picture}\">\n"
                f"<table><tr><th>word</th><th>start (s)</th><th>end (s)</th></tr>{rows}</table>")
        return PAGE.format(title=html.escape(self.text[:60] or "transcript"), body=body)

    def png_bytes(self) -> bytes:
        from matplotlib.figure import Figure

        duration_s = len(self.waveform) / self.sample_rate
        fig = Figure(figsize=(min(24.0, 4 + 1.2 * duration_s), 2.8))
        ax = fig.add_subplot(1, 1, 1)
        step = max(1, len(self.waveform) // 20000)  # an envelope of at most ~20,000 points
        shown = self.waveform[: len(self.waveform) // step * step].reshape(-1, step)
        t = np.arange(len(shown)) * step / self.sample_rate
        ax.fill_between(t, shown.min(1), shown.max(1), color="#555", linewidth=0)
        for i, w in enumerate(self.words):
            ax.axvspan(w.start_s, w.end_s, color=("#8cf", "#fc8")[i % 2], alpha=0.5)
            ax.text((w.start_s + w.end_s) / 2, 1.02, w.text, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=8, rotation=45)
        ax.set_xlim(0, max(duration_s, 1e-3))
        ax.set_xlabel("seconds")
        ax.set_yticks([])
        return _png(fig)


Explanation = TextExplanation | TagExplanation | CaptionExplanation | SpeechExplanation



def save_all(explanations: list[Explanation], directory: str | Path, stems: list[str] | None = None) -> list[Path]:
    """Write DIRECTORY/<stem>.html and .png for each explanation (stems: 0, 1, ... by default); returns the pages."""
    stems = stems or [str(n) for n in range(len(explanations))]
    return [e.save(directory, stem)[0] for e, stem in zip(explanations, stems)]


def use_color(stream=None) -> bool:
    """ANSI colours: only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


# ---------------------------------------------------------------------------------------------------------
# Rendering helpers


def _scale(values: list[float]) -> float:
    return max((abs(v) for v in values), default=0.0) or 1.0


def _highlight(text: str, spans: list[tuple[int, int, float]], color: bool) -> str:
    """The text with each span's background shaded by its value: green for, red against (ANSI 256 colours)."""
    if not color:
        return text
    scale, parts, cursor = _scale([v for _, _, v in spans]), [], 0
    for start, end, value in spans:
        parts.append(text[cursor:start])
        share = abs(value) / scale
        if share < FAINT:
            parts.append(text[start:end])
        else:
            shade = (ANSI_GREENS if value > 0 else ANSI_REDS)[min(4, int(share * 5))]
            parts.append(f"\x1b[30;48;5;{shade}m{text[start:end]}\x1b[0m")
        cursor = end
    return "".join(parts) + text[cursor:]


def _listed(words: list[WordAttribution]) -> str:
    return ", ".join(f"{w.word} ({w.attribution:+.3f})" for w in words)


def _shaded(heatmap: np.ndarray, max_side: int = 12) -> list[str]:
    """A heat map as lines of shade characters (two per cell), pooled to at most max_side cells a side; only its
    positive part, scaled to the peak."""
    pool = math.ceil(max(heatmap.shape) / max_side)
    h, w = math.ceil(heatmap.shape[0] / pool), math.ceil(heatmap.shape[1] / pool)
    padded = np.zeros((h * pool, w * pool))
    padded[: heatmap.shape[0], : heatmap.shape[1]] = heatmap
    pooled = np.clip(padded.reshape(h, pool, w, pool).mean((1, 3)), 0, None)
    pooled = pooled / pooled.max() if pooled.max() > 0 else pooled
    return ["".join(SHADES[int(round(v * (len(SHADES) - 1)))] * 2 for v in row) for row in pooled]


def _upsampled(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The positive part of a grid heat map, scaled to [0, 1] and resized (bilinear) to the image's pixels."""
    from PIL import Image

    positive = np.clip(heatmap, 0, None)
    positive = positive / positive.max() if positive.max() > 0 else positive
    return np.asarray(Image.fromarray(positive.astype(np.float32), mode="F").resize(size[::-1], Image.BILINEAR))


def _overlay(heat: np.ndarray) -> np.ndarray:
    """(S, S) values in [0, 1] -> an (S, S, 4) RGBA layer: inferno colours, as opaque as the value is high."""
    from matplotlib import colormaps

    layer = colormaps["inferno"](heat)
    layer[..., 3] = 0.75 * heat
    return layer


def _peak(heatmap: np.ndarray) -> str:
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return f"({row}, {col}) of {heatmap.shape[0]}x{heatmap.shape[1]}"


def _wrap(text: str, width: int = 28) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:3])


def _figure_png(items: list[Any], draw, rows: float = 3.0) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, rows))
    for i, item in enumerate(items):
        draw(item, fig.add_subplot(len(items), 1, i + 1))
    return _png(fig)


def _draw_nothing_found(text: str, ax) -> None:
    ax.axis("off")
    ax.set_title(_wrap(text, 80) + "\n(no entities)", fontsize=9)


def _png(fig) -> bytes:
    """A figure's PNG bytes (matplotlib's Agg canvas; pyplot's global state is not touched)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _write(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
