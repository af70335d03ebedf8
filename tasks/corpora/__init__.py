"""Corpora generators: offline data sets with exact labels, for training, tests and benchmarks.

`speech`: espeak-ng speaking fortune sentences in many voices (an audiofolder with transcripts, and one long
recording with timestamps); `sentences`: the sentence source it reads, Debian's `fortunes` quote files
(`tasks.corpora.sentences.sentences()`, also reachable as `tasks.corpora.speech.sentences`; not re-exported
here, where the name would hide the module).
"""

from tasks.corpora.sentences import MissingSentenceSource
from tasks.corpora.speech import MissingSpeechSynthesizer, generate_speech_corpus, long_recording

__all__ = ["generate_speech_corpus", "long_recording", "MissingSentenceSource", "MissingSpeechSynthesizer"]
