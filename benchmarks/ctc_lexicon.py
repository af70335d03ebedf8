"""The CTC head read greedily against a lexicon beam search, on the same clips in the same run.

    .venv/bin/python benchmarks/ctc_lexicon.py --model runs/asr_stage1/best --clips data/speech/eval \
        --lexicon data/speech/train/metadata.jsonl [--lm runs/words.arpa]

The CTC logits of every clip are computed once. The clips are split in two halves: the word score (added per
emitted word) is chosen on the first half from `--word-scores`, and greedy decoding and the lexicon search at
that score are reported on the second, so the figure is not tuned on the clips it reports. A phone CTC head
(heads.ctc_units: phonemes) is read greedily as phones and scored against the references' phones (its WER
and CER are then phone and IPA-character error rates); its lexicon search writes words. Prints WER, CER
and decoding milliseconds per clip (the search only; the encoder is shared) for each word score and decoder,
and the share of the reported clips' words that the lexicon lacks (those can only be errors). With `--lm` (a
word n-gram file, e.g. from `multimodal ngram` on the training transcripts), the lexicon search with the LM
joins the table: its LM weight and word score are chosen together on the first half in the same way. With
`--rescore` as well, the search at the chosen LM setting keeps its `--nbest` best transcripts a clip and the model's
own backbone re-ranks them (tasks/lm_rescore.py); the rescoring weight and word bonus are chosen on the first half
too, and the oracle (the best of the n for each clip) shows what any rescorer could reach.
`--json FILE` keeps the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def clip_logits(model, folder: Path, rows: list[dict], batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(1, T, V) CTC logits and (1, T) frame mask per clip, computed in batches."""
    from encoders import load_audio
    from multimodal.processor import Example, Processor
    from tasks import get_task

    prompt, processor, out = get_task("transcribe").prompt, Processor(model), []
    for i in range(0, len(rows), batch_size):
        audio = [load_audio(folder / r["file_name"]) for r in rows[i : i + batch_size]]
        batch = processor([Example(prompt, audios=[a]) for a in audio], padding_side="left")
        logits, mask = model.ctc_logits(batch["audio_values"], batch["audio_attention_mask"])  # (B, T, V), (B, T)
        out += [(logits[j : j + 1, mask[j]], torch.ones(1, int(mask[j].sum()), dtype=torch.bool))
                for j in range(len(audio))]
    return out


def decode(items, decoder, units) -> tuple[list[str], float]:
    """Transcripts of `items` (`units.greedy` when `decoder` is None: phones for a phone head) and the
    milliseconds a clip. `units`: the model's tasks.ctc_units.CtcUnits."""
    start = time.perf_counter()
    texts = [(decoder or units.greedy)(l, m)[0] for l, m in items]
    return texts, 1000 * (time.perf_counter() - start) / max(len(items), 1)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint with a CTC head")
    p.add_argument("--clips", required=True, help="audiofolder of held-out clips (metadata.jsonl: file_name, text)")
    p.add_argument("--lexicon", required=True, help="word list: text file or metadata.jsonl (e.g. the training set's)")
    p.add_argument("--max-clips", type=int, default=0, help="0 = all")
    p.add_argument("--word-scores", type=float, nargs="+", default=[0.0, -1.0, -2.0, -3.0, -4.0, -6.0])
    p.add_argument("--lm", help="word n-gram LM (ARPA / KenLM binary) to add to the lexicon search")
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    p.add_argument("--lm-word-scores", type=float, nargs="+", default=[-2.0, 0.0, 2.0])
    p.add_argument("--rescore", action="store_true", help="with --lm: re-rank the n best by the model's backbone LM")
    p.add_argument("--nbest", type=int, default=20)
    p.add_argument("--rescore-weights", type=float, nargs="+", default=[0.3, 0.5, 1.0, 1.5])
    p.add_argument("--rescore-word-bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    p.add_argument("--beam-size", type=int, help="lexicon search beam (default: the library's, DEFAULT_BEAM_SIZE)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    import multimodal as mm
    from tasks.ctc import normalize
    from tasks.ctc_lexicon import DEFAULT_BEAM_SIZE, LexiconDecoder, read_lexicon_texts
    from tasks.ctc_units import ctc_units
    from tasks.metrics import cer, wer

    if args.threads:
        torch.set_num_threads(args.threads)
    args.beam_size = DEFAULT_BEAM_SIZE if args.beam_size is None else args.beam_size
    if args.beam_size < 1:
        raise SystemExit(f"ctc_lexicon: --beam-size must be at least 1, got {args.beam_size}")
    folder = Path(args.clips)
    if not (folder / "metadata.jsonl").is_file():
        raise SystemExit(f"ctc_lexicon: '{folder}' has no metadata.jsonl")
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines() if line.strip()]
    rows = rows[: args.max_clips] if args.max_clips else rows
    if len(rows) < 2:
        raise SystemExit(f"ctc_lexicon: '{folder}' needs at least 2 clips (one to choose the word score, one to report)")
    try:  # read once, before the model runs, so that a bad word list fails in a second
        words = read_lexicon_texts(args.lexicon)  # texts: a phone head's lexicon reads words in their sentences
        if args.lm and not Path(args.lm).is_file():
            raise FileNotFoundError(f"n-gram LM file not found: {args.lm!r}")
    except (OSError, ValueError) as e:
        raise SystemExit(f"ctc_lexicon: {e}") from e
    model = mm.load(args.model).eval()
    items = clip_logits(model, folder, rows, args.batch_size)
    units = ctc_units(model.config.heads)
    refs = [normalize(r["text"]) for r in rows]
    # Greedy decoding of a phone head writes phones: it is scored against the references' phones (WER = PER).
    greedy_refs = [units.reference(r["text"], r.get("voice")) for r in rows]
    half = len(rows) // 2
    tune, report = slice(0, half), slice(half, None)

    def scores(decoder, part: slice) -> dict:
        texts, ms = decode(items[part], decoder, units)
        truth = refs if decoder else greedy_refs
        return {"wer": wer(truth[part], texts), "cer": cer(truth[part], texts), "ms_per_clip": ms}

    results = {"model": args.model, "clips": str(folder), "n_tune": half, "n_report": len(rows) - half,
               "lexicon": args.lexicon, "beam_size": args.beam_size, "units": units.kind, "by_word_score": {}}
    decoders = {}
    print(f"{'decoder':<22} {'tune WER':>9} {'report WER':>11} {'report CER':>11} {'ms/clip':>8}")
    greedy = {"tune": scores(None, tune), "report": scores(None, report)}
    results["greedy"] = greedy
    print(f"{'greedy' if units.kind == 'chars' else 'greedy (phone rates)':<22} {greedy['tune']['wer']:>9.3f} {greedy['report']['wer']:>11.3f} "
          f"{greedy['report']['cer']:>11.3f} {greedy['report']['ms_per_clip']:>8.1f}")
    for ws in args.word_scores:
        decoders[ws] = LexiconDecoder(words, beam_size=args.beam_size, word_score=ws, units=units.kind, accent=units.accent)
        r = results["by_word_score"][ws] = {"tune": scores(decoders[ws], tune), "report": scores(decoders[ws], report)}
        print(f"{f'lexicon, word score {ws:g}':<22} {r['tune']['wer']:>9.3f} {r['report']['wer']:>11.3f} "
              f"{r['report']['cer']:>11.3f} {r['report']['ms_per_clip']:>8.1f}")
    best = min(args.word_scores, key=lambda ws: results["by_word_score"][ws]["tune"]["wer"])
    chosen = results["by_word_score"][best]["report"]
    known = set(decoders[best].words)
    report_words = [w for ref in refs[report] for w in ref.split()]
    results.update(chosen_word_score=best, lexicon_words=len(known),
                   out_of_lexicon=sum(w not in known for w in report_words) / max(len(report_words), 1))
    if args.lm:
        results.update(lm=args.lm, by_lm_weight={})
        for weight in args.lm_weights:
            for ws in args.lm_word_scores:
                decoder = LexiconDecoder(words, beam_size=args.beam_size, word_score=ws, lm=args.lm, lm_weight=weight,
                                         units=units.kind, accent=units.accent)
                r = results["by_lm_weight"][f"{weight:g}/{ws:g}"] = {"tune": scores(decoder, tune),
                                                                   "report": scores(decoder, report)}
                print(f"{f'+ LM {weight:g}, word {ws:g}':<22} {r['tune']['wer']:>9.3f} {r['report']['wer']:>11.3f} "
                      f"{r['report']['cer']:>11.3f} {r['report']['ms_per_clip']:>8.1f}")
        results["chosen_lm"] = min(results["by_lm_weight"], key=lambda k: results["by_lm_weight"][k]["tune"]["wer"])
    print(f"\nword score chosen on the first {half} clips: {best:g}. On the other {len(rows) - half}: "
          f"WER {greedy['report']['wer']:.3f} greedy -> {chosen['wer']:.3f} lexicon, "
          f"CER {greedy['report']['cer']:.3f} -> {chosen['cer']:.3f}; "
          f"{100 * results['out_of_lexicon']:.1f} % of their words are not among the lexicon's {len(known)}")
    if args.lm:
        with_lm = results["by_lm_weight"][results["chosen_lm"]]["report"]
        print(f"with the LM (weight/word score {results['chosen_lm']}, chosen on the first half): "
              f"WER {with_lm['wer']:.3f}, CER {with_lm['cer']:.3f}")
    if args.lm and args.rescore:
        results["rescoring"] = rescoring(model, items, refs, half, words, units, args, results["chosen_lm"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


def rescoring(model, items, refs: list[str], half: int, words, units, args, chosen_lm: str) -> dict:
    """The n best of the search at the chosen LM setting, re-ranked by the backbone over a grid chosen on the
    first half; prints and returns the table, the oracle and the milliseconds a clip each step takes."""
    from tasks.ctc_lexicon import LexiconDecoder
    from tasks.lm_rescore import causal_lm_scorer, rescore
    from tasks.metrics import cer, wer

    weight, ws = (float(x) for x in chosen_lm.split("/"))
    decoder = LexiconDecoder(words, beam_size=args.beam_size, word_score=ws, lm=args.lm, lm_weight=weight,
                             units=units.kind, accent=units.accent, nbest=args.nbest)
    start = time.perf_counter()
    found = [h for logits, mask in items for h in decoder.hypotheses(logits, mask)]
    search_ms = 1000 * (time.perf_counter() - start) / len(items)
    texts = sorted({t for clip in found for t, _ in clip if t})
    start = time.perf_counter()
    lm = dict(zip(texts, causal_lm_scorer(model.backbone, model.tokenizer)(texts)))
    lm_ms = 1000 * (time.perf_counter() - start) / len(items)
    parts = {"tune": slice(0, half), "report": slice(half, None)}
    out = {"nbest": args.nbest, "lm_setting": chosen_lm, "distinct_texts": len(texts), "search_ms_per_clip": search_ms,
           "lm_ms_per_clip": lm_ms, "grid": {}}
    best = [min(clip, key=lambda h: wer([ref], [h[0]]))[0] if clip else "" for clip, ref in zip(found, refs)]
    for name, part in parts.items():  # the best of the n per clip: what a perfect rescorer would write
        out[f"oracle_{name}_wer"] = wer(refs[part], best[part])
    print(f"\nrescoring the {args.nbest} best (LM {chosen_lm}) with the backbone: {len(texts)} texts, search "
          f"{search_ms:.0f} ms + LM {lm_ms:.0f} ms a clip; oracle WER tune {out['oracle_tune_wer']:.3f}, "
          f"report {out['oracle_report_wer']:.3f}")
    for rw in args.rescore_weights:
        for bonus in args.rescore_word_bonuses:
            picked = rescore(found, lambda ts: [lm[t] for t in ts], rw, bonus)
            r = out["grid"][f"{rw:g}/{bonus:g}"] = {
                name: {"wer": wer(refs[part], picked[part]), "cer": cer(refs[part], picked[part])}
                for name, part in parts.items()}
            print(f"{f'rescore {rw:g}, word {bonus:g}':<22} {r['tune']['wer']:>9.3f} {r['report']['wer']:>11.3f} "
                  f"{r['report']['cer']:>11.3f}")
    out["chosen"] = min(out["grid"], key=lambda k: out["grid"][k]["tune"]["wer"])
    chosen = out["grid"][out["chosen"]]["report"]
    print(f"rescored (weight/word bonus {out['chosen']}, chosen on the first half): WER {chosen['wer']:.3f}, "
          f"CER {chosen['cer']:.3f}")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
