"""The fused model: modality encoders -> adapters -> placeholder tokens in a pretrained LM's input embeddings.

The model receives modules that are already built (`multimodal.build` does the wiring). Adapter outputs
replace the embeddings of placeholder tokens (`<image>`, `<audio>`) in order of appearance; when a row's
placeholder tokens and the adapter tokens of its inputs disagree in number, that is an error naming the row,
never a truncation.

Losses are means over their items (target tokens, characters, rows). `loss_items` counts those items from a
batch's labels, so that a training step can sum them over its micro-batches first and pass the sums to
`forward(num_items=...)`: the micro-batches' losses then add up to the loss of one large batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoders import EncoderOutput
from multimodal.adapters import Adapter
from multimodal.config import Config

PLACEHOLDERS = {"image": "<image>", "audio": "<audio>"}  # modality -> placeholder token string
IGNORE_INDEX = -100  # label of a position that is not a target
LOSS_TERMS = ("lm", "ctc", "classify", "tag")  # the loss terms of `forward`, each a mean over its own items


class PlaceholderMismatchError(ValueError):
    """The prompt's placeholder tokens and the encoders' adapter tokens differ in number."""


class PretrainedPartsError(ValueError):
    """An adapter-only checkpoint attaches to other pretrained parts than the model loading it was built from."""


def loss_items(batch: dict[str, Any]) -> dict[str, int]:
    """The number of items each loss term of `forward` averages over in `batch`, counted from its labels (0 when the
    batch has none): "lm" target tokens (labels[:, 1:] != -100), "ctc" target characters or phones (ctc_labels
    >= 0), "classify" rows, "tag" tagged tokens (tag_labels != -100)."""
    def count(key: str, is_item) -> int:
        return int(is_item(batch[key]).sum()) if batch.get(key) is not None else 0

    return {
        "lm": count("labels", lambda t: t[:, 1:] != IGNORE_INDEX),
        "ctc": count("ctc_labels", lambda t: t >= 0),
        "classify": batch["class_labels"].shape[0] if batch.get("class_labels") is not None else 0,
        "tag": count("tag_labels", lambda t: t != IGNORE_INDEX),
    }


def _term(mean: torch.Tensor, n_items: int | torch.Tensor, term: str,
          num_items: dict[str, float] | None) -> torch.Tensor:
    """A loss term: its `mean` over this batch's `n_items`, or with `num_items`, the sum over them divided by
    num_items[term] (the count over a whole optimizer step). A mean over no items is a sum of 0 over 1 (CTC's)."""
    if num_items is None:
        return mean
    return mean * max(int(n_items), 1) / max(num_items[term], 1)


@dataclass
class ModelOutput:
    loss: torch.Tensor | None = None  # the batch's mean loss; with forward's `num_items`, its share of a step's
    logits: torch.Tensor | None = None  # (B, L, V) causal LM logits, when asked for
    hidden_states: torch.Tensor | None = None  # (B, L, D) last hidden states of an encoder LM
    head_logits: torch.Tensor | None = None  # (B, n_labels) classify head, or (B, L, n_tags) tag head


def _check_placeholders(modality: str, row_slots: list[int], input_tokens: list[int]) -> None:
    """Each row's placeholder tokens must be filled by whole inputs, taken in order (as `embed` splices them):
    row 0 by the first inputs, row 1 by the next... `row_slots`: placeholders per row; `input_tokens`: adapter
    tokens per input. A row the inputs overfill or underfill is an error naming it."""
    marker, taken = PLACEHOLDERS[modality], 0
    for row, n_slots in enumerate(row_slots):
        first, got = taken, 0
        while got < n_slots and taken < len(input_tokens):
            got, taken = got + input_tokens[taken], taken + 1
        if got != n_slots:
            if taken == first + 1:
                given = f"{modality} input {first} gives"
            else:
                given = f"{modality} inputs {first}-{taken - 1} give" if taken > first else f"no {modality} input is left, giving"
            raise PlaceholderMismatchError(
                f"row {row}: the prompt holds {n_slots} {marker} tokens but {given} {got} adapter tokens "
                f"(the batch: {sum(row_slots)} {marker} tokens, {len(input_tokens)} input(s) giving "
                f"{sum(input_tokens)} adapter tokens)"
            )
    if sum(input_tokens[taken:]):
        raise PlaceholderMismatchError(
            f"the prompts hold {sum(row_slots)} {marker} tokens but the {len(input_tokens)} {modality} input(s) give "
            f"{sum(input_tokens)} adapter tokens: input(s) {taken}-{len(input_tokens) - 1} have no placeholders"
        )


class MultimodalModel(nn.Module):
    def __init__(
        self,
        config: Config,
        backbone: nn.Module,
        tokenizer: Any,
        encoders: dict[str, nn.Module],
        adapters: dict[str, Adapter],
        pretrained_parts: dict[str, str],
        heads: dict[str, nn.Module] | None = None,
    ):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.encoders = nn.ModuleDict(encoders)
        self.adapters = nn.ModuleDict(adapters)
        self.heads = nn.ModuleDict(heads or {})  # e.g. "ctc": frames -> characters
        self.pretrained_parts = pretrained_parts  # component -> the pretrained source it was loaded from
        self.placeholder_ids = {m: tokenizer.convert_tokens_to_ids(PLACEHOLDERS[m]) for m in self.encoders}
        self.is_causal = config.backbone.kind == "causal"
        self.decoding: dict[str, Any] = {}  # a shipped model's decoding settings (multimodal/resolve.py)

    # ---- components and their training modes
    def components(self) -> dict[str, nn.Module]:
        """Named parts, as `training.<name>` in the config sees them (`adapters` covers every adapter)."""
        parts: dict[str, nn.Module] = {"backbone": self.backbone, "adapters": self.adapters, "heads": self.heads}
        for modality, encoder in self.encoders.items():
            parts[f"{modality}_encoder"] = encoder
        return parts

    def train(self, mode: bool = True):
        super().train(mode)
        for name, module in self.components().items():  # frozen parts keep eval behaviour (BN stats, dropout)
            if getattr(self.config.training, name).mode == "frozen":
                module.eval()
        return self

    def check_attaches_to(self, attaches_to: dict[str, str], checkpoint: str) -> None:
        """An adapter-only checkpoint's weights were trained on top of the pretrained parts it names (its
        checkpoint.json "attaches_to", component -> source): this model must have been built from the same ones,
        or the stored weights would sit on other weights. A part that differs, or that only one side has, is an
        error naming both sides."""
        parts = self.pretrained_parts
        differ = sorted(part for part in {**attaches_to, **parts} if attaches_to.get(part) != parts.get(part))
        if differ:
            listed = "; ".join(f"{part}: the checkpoint's {attaches_to.get(part, 'none (trained, stored)')!r}, "
                               f"the config's {parts.get(part, 'none (random init)')!r}" for part in differ)
            raise PretrainedPartsError(f"'{checkpoint}' is an adapter-only checkpoint trained on other pretrained "
                                       f"parts than this model was built from ({listed}); build it from the parts "
                                       "the checkpoint names")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- the fused input
    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        encoded: dict[str, EncoderOutput] | None = None,
    ) -> torch.Tensor:
        """Token embeddings (B, L, D_lm) with adapter tokens spliced in at the placeholders.

        `encoded` collects each modality's encoder output, for heads that read it (CTC).
        """
        inputs = {
            "image": {"pixel_values": pixel_values} if pixel_values is not None else None,
            "audio": {"input_values": audio_values, "attention_mask": audio_attention_mask}
            if audio_values is not None
            else None,
        }
        table = self.backbone.get_input_embeddings()
        is_placeholder = torch.zeros_like(input_ids, dtype=torch.bool)
        for token_id in self.placeholder_ids.values():
            is_placeholder |= input_ids == token_id
        embeds = table(input_ids.masked_fill(is_placeholder, 0))  # (B, L, D_lm); placeholder rows replaced below
        for modality, token_id in self.placeholder_ids.items():
            slots = input_ids == token_id  # (B, L)
            n_slots = int(slots.sum())
            if inputs[modality] is None:
                if n_slots:
                    raise PlaceholderMismatchError(f"{n_slots} {PLACEHOLDERS[modality]} tokens but no {modality} input")
                continue
            enc = self.encoders[modality](**inputs[modality])  # (N, T, D_enc)
            if modality == "audio":
                enc = self._shared_ctc_layers(enc)
            if encoded is not None:
                encoded[modality] = enc
            tokens, mask = self.adapters[modality](enc)  # (N, T', D_lm), (N, T')
            _check_placeholders(modality, slots.sum(1).tolist(), mask.sum(1).tolist())
            real = tokens[mask]  # (sum of real tokens, D_lm), item by item in order
            embeds = embeds.masked_scatter(slots.unsqueeze(-1), real.to(embeds.dtype))
        for modality in set(PLACEHOLDERS) - set(self.placeholder_ids):
            if inputs[modality] is not None:
                raise ValueError(f"this model has no {modality} encoder (config encoders.{modality} is null)")
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        ctc_labels: torch.Tensor | None = None,
        return_logits: bool = False,
        class_labels: torch.Tensor | None = None,
        tag_labels: torch.Tensor | None = None,
        head: str | None = None,
        num_items: dict[str, float] | None = None,
    ) -> ModelOutput:
        """Causal LM: loss on target tokens only (labels != -100), logits when no labels or when asked;
        plus the CTC loss on audio clips when `ctc_labels` (N_clips, S; -1 = padding) come and its weight > 0.
        Encoder LM: last hidden states (heads live in tasks).
        Text heads (`head` "classify" / "tag", implied by `class_labels` (B,) or (B, C) / `tag_labels` (B, L)):
        the head's logits on the last hidden states, and its loss when labels come.
        Each loss term is a mean over this batch's items (`loss_items`); with `num_items` (term -> items of the
        whole optimizer step), it is the sum over this batch's items divided by that count instead."""
        head = head or ("classify" if class_labels is not None else "tag" if tag_labels is not None else None)
        tc = self.config.training
        use_ctc = ctc_labels is not None and tc.ctc_loss_weight > 0 and "ctc" in self.heads
        n_ctc = (ctc_labels >= 0).sum() if use_ctc else 0  # target characters (or phones)
        if use_ctc and tc.lm_loss_weight == 0 and not return_logits:  # encoder-only objective: skip the LM
            enc = self.encoders["audio"](input_values=audio_values, attention_mask=audio_attention_mask)
            ctc = self._ctc_loss(self._shared_ctc_layers(enc), ctc_labels)
            return ModelOutput(loss=tc.ctc_loss_weight * _term(ctc, n_ctc, "ctc", num_items))
        encoded: dict[str, EncoderOutput] = {}
        embeds = self.embed(input_ids, pixel_values, audio_values, audio_attention_mask, encoded)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L): same for left or right padding
        if head is not None:
            return self._head_forward(head, embeds, attention_mask, position_ids, class_labels, tag_labels, num_items)
        if not self.is_causal:
            out = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask,
                                position_ids=position_ids + self._position_offset())
            return ModelOutput(hidden_states=out.last_hidden_state)
        hidden = self.backbone.base_model(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        head = self.backbone.get_output_embeddings()
        output = ModelOutput()
        if labels is None or return_logits:
            output.logits = head(hidden)  # (B, L, V)
        if labels is not None:
            targets = labels[:, 1:]  # (B, L-1): token t+1 is predicted at position t
            is_target = targets != IGNORE_INDEX
            logits = head(hidden[:, :-1][is_target])  # (N_targets, V): the head runs on targets only
            lm = F.cross_entropy(logits.float(), targets[is_target])
            output.loss = tc.lm_loss_weight * _term(lm, is_target.sum(), "lm", num_items)
            if use_ctc:
                ctc = self._ctc_loss(encoded["audio"], ctc_labels)
                output.loss = output.loss + tc.ctc_loss_weight * _term(ctc, n_ctc, "ctc", num_items)
        return output

    def _position_offset(self) -> int:
        """Where an encoder LM's positions start: after the padding index for RoBERTa's embeddings, else 0."""
        padding_idx = getattr(getattr(self.backbone, "embeddings", None), "padding_idx", None)
        return padding_idx + 1 if isinstance(padding_idx, int) else 0

    def _head_forward(self, head: str, embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                      class_labels: torch.Tensor | None, tag_labels: torch.Tensor | None,
                      num_items: dict[str, float] | None = None) -> ModelOutput:
        if head not in self.heads:
            raise ValueError(f"this model has no '{head}' head: set heads.{head} in the config and train it "
                             "(its labels come from the training data)")
        if self.is_causal:
            hidden = self.backbone.base_model(inputs_embeds=embeds, attention_mask=attention_mask,
                                              position_ids=position_ids).last_hidden_state  # (B, L, D)
        else:
            hidden = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask,
                                   position_ids=position_ids + self._position_offset()).last_hidden_state
        module = self.heads[head]
        logits = module(hidden, attention_mask)  # (B, C) or (B, L, T)
        labels = class_labels if head == "classify" else tag_labels
        if labels is None:
            return ModelOutput(head_logits=logits)
        n_items = labels.shape[0] if head == "classify" else (labels != IGNORE_INDEX).sum()
        return ModelOutput(loss=_term(module.loss(logits, labels), n_items, head, num_items), head_logits=logits)

    def _shared_ctc_layers(self, enc: EncoderOutput) -> EncoderOutput:
        """With heads.ctc_shared, the audio frames after the CTC head's layers (what the adapter and the CTC
        classifier read); else the encoder's frames as they are."""
        if not self.config.heads.ctc_shared:
            return enc
        return EncoderOutput(self.heads["ctc"].hidden(enc.features, enc.mask), enc.mask, enc.grid)  # (N, T, D_enc)

    def _ctc_head_logits(self, enc: EncoderOutput) -> torch.Tensor:
        """(N, T, V) CTC logits from the audio frames `_shared_ctc_layers` gave."""
        from tasks.ctc_head import ctc_head_logits

        if self.config.heads.ctc_shared:
            return self.heads["ctc"].classify(enc.features)
        return ctc_head_logits(self.heads["ctc"], enc.features, enc.mask)

    def _ctc_loss(self, enc: EncoderOutput, ctc_labels: torch.Tensor) -> torch.Tensor:
        from tasks.ctc import ctc_loss

        targets = [row[row >= 0].tolist() for row in ctc_labels]  # (N_clips, S) padded with -1
        return ctc_loss(self._ctc_head_logits(enc), enc.mask, targets)

    @torch.no_grad()
    def ctc_logits(self, audio_values: torch.Tensor, audio_attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The CTC head's (N, T, V) logits over encoder frames and the (N, T) mask of real frames."""
        if "ctc" not in self.heads:
            raise ValueError("this model has no CTC head (config heads.ctc is false)")
        enc = self._shared_ctc_layers(self.encoders["audio"](input_values=audio_values, attention_mask=audio_attention_mask))
        return self._ctc_head_logits(enc), enc.mask

    def ctc_texts(self, audio_values: torch.Tensor, audio_attention_mask: torch.Tensor, lexicon: Any = None) -> list[str]:
        """CTC transcripts per clip: greedy, or a `tasks.ctc_lexicon.LexiconDecoder` search over its word list.

        Greedy decoding of a phone head (heads.ctc_units: phonemes) gives phones separated by spaces, not words.
        """
        return self.ctc_decode(*self.ctc_logits(audio_values, audio_attention_mask), lexicon)

    def ctc_decode(self, logits: torch.Tensor, mask: torch.Tensor, lexicon: Any = None) -> list[str]:
        """Texts from `ctc_logits`' (N, T, V) logits and (N, T) mask: greedy, or the lexicon search."""
        from tasks.ctc_units import ctc_units

        return lexicon(logits, mask) if lexicon is not None else ctc_units(self.config.heads).greedy(logits, mask)

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], generation: Any = None) -> list[str]:
        """Decode a left-padded batch from `Processor`; returns one text per row (see multimodal.generation)."""
        from multimodal.generation import generate

        return generate(self, batch, generation)

    def transcribe(self, audio: Any, decoder: str | None = None, batch_size: int = 8, sample_rate: int | None = None,
                   progress: bool = False, lexicon: Any = None, lm: str | None = None, rescore: bool | None = None,
                   word_timestamps: bool = False):
        """Transcript(s) of a path, an array (at `sample_rate`) or a list of them; see multimodal.transcribe.

        Each Transcript has `.text`, `.segments` (start_s, end_s, text) and `.error` for a skipped file; with
        `word_timestamps` (a character CTC head) each segment's `.words` hold (text, start_s, end_s).
        `lexicon` (decoder="ctc"): a word list the CTC beam search may only write (tasks/ctc_lexicon.py);
        `lm`: a word n-gram file (ARPA / KenLM) that scores the words in that search; `rescore`: the backbone
        re-ranks that search's best transcripts. A setting left None is the shipped model's (its card's), else
        the default: decoder "lm", no lexicon, no rescoring.
        """
        from multimodal.resolve import decoding_settings
        from multimodal.transcribe import transcribe

        single = not isinstance(audio, (list, tuple))
        settings = decoding_settings(self, "transcribe", decoder=decoder, lexicon=lexicon, lm=lm, rescore=rescore)
        results = list(transcribe(self, [audio] if single else list(audio), batch_size=batch_size,
                                  sample_rate=sample_rate, progress=progress, word_timestamps=word_timestamps,
                                  **settings))
        return results[0] if single else results

    def caption(self, image: Any, batch_size: int = 8, num_beams: int | None = None, max_new_tokens: int | None = None,
                progress: bool = False):
        """Caption(s) of a path, a PIL image, an (H, W[, C]) array or a list of them; see multimodal.caption.

        Each Caption has `.text`, `.file` and `.error` for a skipped input. A setting left None is the shipped
        model's, else the default (greedy, the caption task's length bound).
        """
        from multimodal.caption import caption
        from multimodal.resolve import decoding_settings

        single = not isinstance(image, (list, tuple))
        settings = decoding_settings(self, "caption", num_beams=num_beams, max_new_tokens=max_new_tokens)
        results = list(caption(self, [image] if single else list(image), batch_size=batch_size, progress=progress,
                               **settings))
        return results[0] if single else results

    def classify(self, texts: str | list[str], labels: list[str] | None = None, shots: list[tuple[str, str]] | None = None,
                 batch_size: int = 16):
        """Prediction(s) for a text or a list of texts, each with `.label` and `.probabilities` of every label.

        Without `labels`: the trained classification head. With `labels`: zero-shot (or, with `shots` of
        (text, label), few-shot) scoring of each label's likelihood by the LM; see multimodal.classify.
        """
        from multimodal.classify import classify

        single = isinstance(texts, str)
        results = classify(self, [texts] if single else list(texts), labels=labels, shots=shots, batch_size=batch_size)
        return results[0] if single else results

    def tag(self, texts: str | list[str], batch_size: int = 16):
        """Entities (text, label, start, end) of a text, or one list per text; see multimodal.tag."""
        from multimodal.tag import tag

        single = isinstance(texts, str)
        results = tag(self, [texts] if single else list(texts), batch_size=batch_size)
        return results[0] if single else results

    def explain(self, inputs: Any, task: str | None = None, target: str | list[str] | None = None,
                steps: int | None = None, batch_size: int = 4, sample_rate: int | None = None):
        """What the output for an input (or a list of them) relied on; see multimodal.explain.

        Texts with a classify head: word attributions to the predicted label's probability (integrated gradients);
        with a tag head: the same for each entity found. Images: each caption word's heat map over the encoder's
        grid. Audio: the transcript's word timestamps. `task` picks one (default: by what the inputs are);
        `target` explains a given label or caption instead of the model's. Each result has
        `.to_terminal()`, `.to_html()`, `.save_png(path)` and `.save(dir, stem)`.
        """
        from multimodal.explain import explain

        single = not isinstance(inputs, (list, tuple))
        results = explain(self, [inputs] if single else list(inputs), task=task, target=target, steps=steps,
                          batch_size=batch_size, sample_rate=sample_rate)
        return results[0] if single else results

    def save(self, directory: str | Path, adapter_only: bool = False) -> Path:
        from multimodal.checkpoint import save

        return save(self, directory, adapter_only=adapter_only)
