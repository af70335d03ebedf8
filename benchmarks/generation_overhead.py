"""Our batched captioning and transcription decoding against the bare backbone's `generate`.

Same prompt lengths, same batch, same number of new tokens: the backbone is randomly initialised (so no row
meets EOS within the budget; the bare run forces the count with min_new_tokens and the script checks ours
produced as many) and the repetition guard is off for the equal-work rows. The wrapper's overhead is

    (ours - encoders) / bare - 1

where `encoders` is the measured time of the image/audio encoders + adapters on the same batch (work the bare
LM never does). The repetition guard (max_repeats=4) stops a random model's loops early, so it is timed on
its own: its check run once per decoding step on rows of random tokens, as a share of our decoding time.

    .venv/bin/python benchmarks/generation_overhead.py
    .venv/bin/python benchmarks/generation_overhead.py --batch-size 8 --new-tokens 32 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

import multimodal as mm
from multimodal.generation import GenerationConfig, _stopping_criteria


def batches(model, batch_size: int, audio_s: float) -> dict[str, dict]:
    rng = np.random.RandomState(0)
    images = [Image.fromarray(rng.randint(0, 255, (224, 224, 3), dtype=np.uint8)) for _ in range(batch_size)]
    audios = [rng.randn(int(audio_s * 16000)).astype("float32") * 0.1 for _ in range(batch_size)]
    proc = mm.Processor(model)
    caption = [mm.Example("<image>\nDescribe the image.", None, images=[im]) for im in images]
    speech = [mm.Example("<audio>\nTranscribe the audio.", None, audios=[a]) for a in audios]
    return {"caption": proc(caption, padding_side="left"), "transcribe": proc(speech, padding_side="left")}


def median_time(fn, repeats: int):
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=24)
    p.add_argument("--audio-seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    model = mm.build(args.config, pretrained=False).eval()
    tok = model.tokenizer
    vocab = model.backbone.get_input_embeddings().num_embeddings
    n = args.new_tokens
    equal = GenerationConfig(max_new_tokens=n, max_repeats=0)

    print(f"config {args.config} (random weights), batch {args.batch_size}, {n} new tokens, greedy, KV cache")
    print(f"{'task':<11}{'prompt':>8}{'bare s':>8}{'enc s':>7}{'ours s':>8}{'overhead':>9}{'guard':>7}")
    with torch.inference_mode():
        for task, batch in batches(model, args.batch_size, args.audio_seconds).items():
            ids = batch["input_ids"].clamp(max=vocab - 1)  # placeholders -> an ordinary id: same prompt length
            mask = batch["attention_mask"]

            def bare():
                return model.backbone.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                               do_sample=False, pad_token_id=tok.pad_token_id)

            def encoders():
                return model.embed(batch["input_ids"], batch.get("pixel_values"), batch.get("audio_values"),
                                   batch.get("audio_attention_mask"))

            t_bare, out = median_time(bare, args.repeats)
            if out.shape[1] - ids.shape[1] != n:
                raise RuntimeError(f"bare generate made {out.shape[1] - ids.shape[1]} tokens, expected {n}")
            t_enc, _ = median_time(encoders, args.repeats)
            t_ours, texts = median_time(lambda: model.generate(batch, equal), args.repeats)
            counts = [len(tok(t, add_special_tokens=False).input_ids) for t in texts]
            if min(counts) < n // 2:  # decoded text re-tokenises to about n tokens unless a row stopped at EOS
                raise RuntimeError(f"ours stopped early ({counts} tokens re-tokenised): not equal work")
            guard = _stopping_criteria(4)
            rows = torch.randint(0, vocab, (ids.shape[0], n))

            def guard_checks():
                return [guard(rows[:, : i + 1], None) for i in range(n)]

            t_guard, _ = median_time(guard_checks, args.repeats)
            overhead = (t_ours - t_enc) / t_bare - 1
            print(f"{task:<11}{ids.shape[1]:>8}{t_bare:>8.3f}{t_enc:>7.3f}{t_ours:>8.3f}{overhead:>9.1%}"
                  f"{t_guard / t_ours:>7.1%}")


if __name__ == "__main__":
    main()
