"""Speech recognition speed and memory against audio duration, with the WER on the same recording.

For each duration, a long recording of held-out sentences (espeak-ng, one voice, short pauses) is made,
then transcribed in a fresh process so that its peak memory is its own:

    .venv/bin/python benchmarks/asr_speed.py --model runs/asr/best --minutes 0.17 1 10 60 --decoder lm ctc

Prints duration, wall time, real-time factor (wall / duration), peak RSS and WER/CER per decoder.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(model_dir: str, wav: str, decoder: str, batch_size: int) -> None:
    """Runs in its own process: load, transcribe, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    import multimodal as mm
    from tasks.metrics import cer, wer

    model = mm.load(model_dir)
    reference = json.loads(Path(wav).with_suffix(".json").read_text())["text"]
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t = time.perf_counter()
    result = model.transcribe(wav, decoder=decoder, batch_size=batch_size)
    seconds = time.perf_counter() - t
    print(json.dumps({
        "seconds": seconds, "duration_s": result.duration_s, "segments": len(result.segments),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "rss_after_load_gb": rss_loaded,
        "wer": wer([reference], [result.text]), "cer": cer([reference], [result.text]),
    }))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--minutes", type=float, nargs="+", default=[0.17, 1, 10])
    p.add_argument("--decoder", nargs="+", default=["lm", "ctc"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workdir", default="/tmp/asr-speed")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.model, args.child[0], args.child[1], args.batch_size)
        return
    sys.path.insert(0, str(ROOT))
    from tasks.corpora.speech import long_recording

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{'audio':>8} {'decoder':>7} {'wall s':>8} {'RTF':>7} {'peak RSS':>9} {'after load':>10} {'WER':>6} {'CER':>6}")
    for minutes in args.minutes:
        wav = work / f"long_{minutes:g}min.wav"
        if not wav.is_file():
            long_recording(wav, minutes, seed=1)
        for decoder in args.decoder:
            out = subprocess.run([sys.executable, __file__, "--model", args.model, "--batch-size", str(args.batch_size),
                                  "--child", str(wav), decoder], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{minutes:>7g}m {decoder:>7} failed: {out.stderr[-500:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['duration_s'] / 60:>7.1f}m {decoder:>7} {r['seconds']:>8.1f} {r['seconds'] / r['duration_s']:>7.4f} "
                  f"{r['peak_rss_gb']:>8.2f}G {r['rss_after_load_gb']:>9.2f}G {r['wer']:>6.3f} {r['cer']:>6.3f}")


if __name__ == "__main__":
    main()
