"""Transcription end to end with a tiny model: long files in windows, bad files skipped, silence is empty."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

import multimodal as mm
from multimodal.cli import main
from multimodal.evaluate import evaluate
from multimodal.transcribe import MAX_TOKENS_PER_S, MIN_NEW_TOKENS
from tasks import get_task

from .test_train import ROOT


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory):
    path = tmp_path_factory.mktemp("asr") / "model"
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "backbone.overrides.initializer_range=0.5"])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(int(22050 * 47)) / 22050  # 47 s at 22.05 kHz stereo: 3 windows of <= 20 s
    tone = 0.2 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) + 0.01 * rng.standard_normal(len(t))
    soundfile.write(d / "long.wav", np.stack([tone, tone], axis=1).astype(np.float32), 22050)
    soundfile.write(d / "silence.flac", np.zeros(16000 * 3, dtype=np.float32), 16000)
    (d / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    return d


def test_long_file_bad_file_and_silence(tiny_asr, audio_files):
    model = mm.load(tiny_asr)
    files = [audio_files / "long.wav", audio_files / "broken.wav", audio_files / "silence.flac"]
    long, broken, silence = model.transcribe(files, batch_size=2)
    assert long.error is None and abs(long.duration_s - 47) < 0.01
    assert long.segments and long.text == " ".join(s.text for s in long.segments), "the tiny random LM writes something"
    starts = [s.start_s for s in long.segments]
    assert starts == sorted(starts) and all(s.start_s < s.end_s <= 47.0 + 1e-6 for s in long.segments)
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(long.segments, long.segments[1:]))
    assert broken.error and "broken.wav" in broken.error and broken.text == ""
    assert silence.error is None and silence.text == "" and silence.segments == []


def test_generated_tokens_are_bounded_by_duration(tiny_asr):
    model = mm.load(tiny_asr)
    rng = np.random.default_rng(1)
    result = model.transcribe(0.3 * rng.standard_normal(16000).astype(np.float32), sample_rate=16000)  # 1 s
    n_tokens = len(model.tokenizer(result.text, add_special_tokens=False).input_ids)
    assert n_tokens <= max(MIN_NEW_TOKENS, MAX_TOKENS_PER_S * 1.0) + 1, result.text


def test_ctc_decoder_and_missing_head(tiny_asr, audio_files, tmp_path):
    model = mm.load(tiny_asr)
    assert model.transcribe(audio_files / "long.wav", decoder="ctc").error is None
    plain = mm.build(ROOT / "configs/tiny.yaml")
    with pytest.raises(ValueError, match="no CTC head"):
        plain.transcribe(audio_files / "long.wav", decoder="ctc")


def test_ctc_lexicon_writes_only_lexicon_words(tiny_asr, audio_files, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("a an the cat hat sat on mat\n")
    code = main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--lexicon", str(words), "--format", "json"])
    out, _ = capsys.readouterr()
    text = json.loads(out)["text"]
    assert code == 0 and text and set(text.split()) <= set(words.read_text().split()), text
    greedy = mm.load(tiny_asr).transcribe(audio_files / "long.wav", decoder="ctc").text
    assert not set(greedy.split()) <= set(words.read_text().split()), "the tiny model's greedy output is not words"
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--lexicon", str(words)]) == 2
    assert "lexicon constrains the CTC decoder only" in capsys.readouterr().err
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--lexicon", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lexicon constrains the CTC decoder only"):
        evaluate(mm.load(tiny_asr), [], get_task("transcribe"), lexicon=["a"])


def test_ngram_lm_from_transcripts_joins_the_lexicon_search(tiny_asr, audio_files, tmp_path, capsys):
    rows = [{"file_name": f"{i}.wav", "text": t} for i, t in enumerate(["The cat sat on the mat.", "a hat", "the cat"])]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["ngram", str(tmp_path / "metadata.jsonl"), "--out", str(tmp_path / "lm" / "words.arpa")]) == 0
    assert "3-grams" in capsys.readouterr().out and (tmp_path / "lm" / "words.arpa").read_text().startswith("\\data\\")
    code = main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--lexicon", str(tmp_path / "metadata.jsonl"), "--lm", str(tmp_path / "lm" / "words.arpa")])
    out, _ = capsys.readouterr()
    assert code == 0 and set(out.split()) <= {"the", "cat", "sat", "on", "mat", "a", "hat"}, out
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--lm", str(tmp_path / "lm" / "words.arpa")]) == 2
    assert "needs a lexicon" in capsys.readouterr().err
    assert main(["ngram", str(tmp_path / "nowhere.jsonl"), "--out", str(tmp_path / "x.arpa")]) == 2
    assert "nowhere.jsonl" in capsys.readouterr().err


def test_the_backbone_rescores_the_lexicon_search(tiny_asr, audio_files, tmp_path, capsys, monkeypatch):
    # --rescore: the search keeps its best transcripts and the model's own backbone scores them (the real scorer,
    # watched): it is asked about lexicon sentences only, several a window, and the output is made of them.
    import multimodal.transcribe as transcribe_module

    asked = []
    real = transcribe_module.causal_lm_scorer

    def watched(lm, tokenizer):
        score = real(lm, tokenizer)
        return lambda texts: asked.append(list(texts)) or score(texts)
    monkeypatch.setattr(transcribe_module, "causal_lm_scorer", watched)
    words = tmp_path / "words.txt"
    words.write_text("a an the cat hat sat on mat\n")
    code = main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--lexicon", str(words), "--rescore"])
    out, _ = capsys.readouterr()
    lexicon = set(words.read_text().split())
    assert code == 0 and asked and len(asked[0]) > 1 and all(set(t.split()) <= lexicon for t in asked[0])
    assert out.split() and set(out.split()) <= lexicon, out
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--decoder", "ctc",
                 "--rescore"]) == 2
    assert "give a lexicon" in capsys.readouterr().err


def test_cli_json_srt_and_a_bad_file(tiny_asr, audio_files, tmp_path, capsys):
    code = main(["transcribe", str(audio_files / "long.wav"), str(audio_files / "broken.wav"), "--model", str(tiny_asr),
                 "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "broken.wav" in err and "Traceback" not in err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert len(rows) == 1 and rows[0]["file"].endswith("long.wav") and len(rows[0]["segments"]) >= 1
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--format", "srt",
                 "--output-dir", str(tmp_path)]) == 0
    srt = (tmp_path / "long.srt").read_text()
    assert srt.startswith("1\n00:00:"), srt[:80]  # not empty: the JSON run above had segments
    cues = [block.splitlines() for block in srt.strip().split("\n\n")]
    assert [int(cue[0]) for cue in cues] == list(range(1, len(cues) + 1)) and all("-->" in cue[1] for cue in cues)
    assert " ".join(line for cue in cues for line in cue[2:]).split() == rows[0]["text"].split()  # every word, once


def test_mp3_through_ffmpeg(tiny_asr, audio_files, tmp_path):
    mp3 = tmp_path / "clip.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(audio_files / "long.wav"), "-t", "5", str(mp3)], check=True)
    result = mm.load(tiny_asr).transcribe(mp3)
    assert result.error is None and abs(result.duration_s - 5) < 0.1


def test_phone_ctc_head_targets_greedy_phones_and_lexicon_words(audio_files, tmp_path, capsys):
    from multimodal.data import load_rows
    from tasks import phonemes

    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "heads.ctc_units=phonemes",
                                                  "backbone.overrides.initializer_range=0.5"])
    assert model.heads["ctc"].out_features == len(phonemes.VOCAB)
    clip = np.zeros(8000, dtype=np.float32)
    labels = mm.Processor(model)([mm.Example("<audio>", "a cat", audios=[clip], voice="en-gb-scotland+m3"),
                                  mm.Example("<audio>", "a cat", audios=[clip])])["ctc_labels"]
    first, second = (row[row >= 0].tolist() for row in labels)
    assert first == phonemes.encode("a cat", "en-gb-scotland")  # the voice's accent
    assert second == phonemes.encode("a cat", "en-us") != first

    folder = tmp_path / "speech"
    folder.mkdir()
    rows = [{"file_name": "long.wav", "text": "The cat sat.", "voice": "en-029+f2"},
            {"file_name": "silence.flac", "text": "A hat.", "voice": "en-us+m1"}]
    for row in rows:
        (folder / row["file_name"]).symlink_to(audio_files / row["file_name"])
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task("transcribe")
    metrics = evaluate(model, load_rows(folder, task, follow_symlinks=True), task, decoder="ctc", return_outputs=True)
    assert [o["reference"] for o in metrics["outputs"]] == [" ".join(phonemes.phones("The cat sat.", "en-029")),
                                                            " ".join(phonemes.phones("A hat.", "en-us"))]

    model.save(tmp_path / "model")
    greedy = mm.load(tmp_path / "model").transcribe(audio_files / "long.wav", decoder="ctc").text
    assert greedy and set(greedy.split()) <= set(phonemes.PHONES), greedy
    words = tmp_path / "words.txt"
    words.write_text("a the cat hat sat on mat\n")
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tmp_path / "model"), "--decoder", "ctc",
                 "--lexicon", str(words)]) == 0
    out = capsys.readouterr().out
    assert out.split() and set(out.split()) <= set(words.read_text().split()), out


def test_phone_head_with_one_accent_and_a_bad_accent():
    from tasks import phonemes

    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "heads.ctc_units=phonemes", "heads.ctc_phone_accent=en-us"])
    clip = np.zeros(8000, dtype=np.float32)
    labels = mm.Processor(model)([mm.Example("<audio>", "a cat", audios=[clip], voice="en-gb-scotland+m3")])["ctc_labels"]
    assert labels[0].tolist() == phonemes.encode("a cat", None, "en-us")
    with pytest.raises(ValueError, match="heads.ctc_phone_accent.*xx-nowhere"):
        mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "heads.ctc_units=phonemes", "heads.ctc_phone_accent=xx-nowhere"])


def test_windows_end_in_the_pauses_of_a_file_read_piece_by_piece(tmp_path, monkeypatch):
    """transcribe plans each cut at the quietest 100 ms near a window's end, reading only that region."""
    import multimodal.transcribe as transcribe_module
    from multimodal.transcribe import AudioSource
    from tasks.long_audio import plan_windows

    rate = 16000
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(rate * 30)).astype(np.float32)  # 30 s of loud noise...
    audio[int(15.0 * rate) : int(15.4 * rate)] = 0  # ...with one pause in the 4 s before the first even cut (17 s)
    soundfile.write(tmp_path / "talk.wav", audio, rate)
    audio = soundfile.read(tmp_path / "talk.wav", dtype="float32")[0]  # as stored (16-bit)
    source = AudioSource(tmp_path / "talk.wav")
    np.testing.assert_allclose(source[rate : 2 * rate], audio[rate : 2 * rate], atol=1e-6)
    from_file = plan_windows(source.n_samples, waveform=source)
    assert from_file == plan_windows(len(audio), waveform=audio)
    assert 15.0 * rate <= from_file[0].end <= 15.4 * rate  # the cut lies in the pause, not at the even share
    planned = []
    real_plan = transcribe_module.plan_windows
    monkeypatch.setattr(transcribe_module, "plan_windows",
                        lambda *a, **k: planned.append(k.get("waveform")) or real_plan(*a, **k))
    model = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true"])
    model.transcribe(tmp_path / "talk.wav", decoder="ctc")
    assert isinstance(planned[0], AudioSource)


@pytest.mark.parametrize("suffix", [".m4a", ".mp3", ".ogg"])
def test_compressed_audio_is_read_window_by_window_not_whole(audio_files, tmp_path, suffix):
    """An hour of m4a must not be decoded into memory at once: every format is read by range."""
    from encoders import load_audio
    from multimodal.transcribe import AudioSource
    from tasks.long_audio import Window

    path = tmp_path / f"long{suffix}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(audio_files / "long.wav"), str(path)], check=True)
    source = AudioSource(path)
    assert source._waveform is None  # nothing held whole
    whole = load_audio(path)
    assert abs(source.n_samples - len(whole)) < 0.05 * 16000  # the header's duration, within 50 ms
    window = source.read(Window(0, 20 * 16000, 36 * 16000))
    assert len(window) == 16 * 16000
    reference = whole[20 * 16000 : 36 * 16000]
    correlation = np.corrcoef(window[: len(reference)], reference)[0, 1]
    assert correlation > 0.95, correlation  # the same audio (decoders may differ by a few samples of delay)


def test_word_timestamps_from_the_ctc_alignment(tiny_asr, audio_files, tmp_path, capsys):
    model = mm.load(tiny_asr)
    result = model.transcribe(audio_files / "long.wav", decoder="lm", word_timestamps=True, batch_size=3)
    assert result.text, "the tiny random LM writes something for 47 s of tone"
    words = [w for s in result.segments for w in s.words]
    assert [w.text for w in words] == result.text.split()
    for segment in result.segments:
        assert all(0.0 <= w.start_s <= w.end_s <= 47.0 + 1e-6 for w in segment.words)
    assert main(["transcribe", str(audio_files / "long.wav"), "--model", str(tiny_asr), "--word-timestamps",
                 "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["segments"] and all(len(s["words"]) == len(s["text"].split()) for s in printed["segments"])
    phones = mm.build(ROOT / "configs/tiny.yaml", ["heads.ctc=true", "heads.ctc_units=phonemes"])
    with pytest.raises(ValueError, match="character CTC head"):
        phones.transcribe(np.zeros(16000, np.float32), sample_rate=16000, word_timestamps=True)


def test_a_wav_whose_header_promises_more_than_it_holds_is_named(tiny_asr, audio_files, tmp_path, capsys):
    """Issue 32: it was transcribed as what it holds with exit code 0 and no word about the file."""
    import struct

    from encoders.audio_io import wav_declared_frames

    good = tmp_path / "good.wav"
    soundfile.write(good, np.zeros(16000 * 3, np.float32) + 0.1, 16000, subtype="PCM_16")
    data = good.read_bytes()
    at = data.find(b"data")
    promised = 16000 * 3600 * 10  # ten hours of 16-bit mono frames
    bad = tmp_path / "bad.wav"
    bad.write_bytes(data[:4] + struct.pack("<I", 2 * promised + 36) + data[8 : at + 4] + struct.pack("<I", 2 * promised)
                    + data[at + 8 :])
    assert wav_declared_frames(good) == 16000 * 3 and wav_declared_frames(bad) == promised
    assert wav_declared_frames(audio_files / "silence.flac") is None
    code = main(["transcribe", str(good), "--model", str(tiny_asr), "--decoder", "ctc"])
    assert code == 0 and "warning" not in capsys.readouterr().err
    code = main(["transcribe", str(bad), "--model", str(tiny_asr), "--decoder", "ctc"])
    err = capsys.readouterr().err
    assert code == 1 and "bad.wav" in err and "declares 36000.0 s" in err and "holds 3.0 s" in err, err
    result = mm.load(tiny_asr).transcribe(bad, decoder="ctc")
    assert result.error is None and result.warning and abs(result.duration_s - 3.0) < 0.01
