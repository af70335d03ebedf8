"""Tiny random GPT-2, BERT and RoBERTa backbones saved in HF layout, loaded by path like a hub name.

Each has a real fast tokenizer (byte-level BPE or WordPiece trained in milliseconds on `SENTENCES`), so
character offsets, special tokens and padding behave as in the full-size models.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "Maria Lopez moved to Paris in March 2019.", "Acme Corp opened an office in Berlin.",
    "The cat sat on the mat.", "I ate a ripe banana", "apples are sweet", "the mango was juicy",
    "it rained all day", "the sun is shining", "a cold wind blows", "snow fell overnight",
    "John Smith joined Globex Inc on 12 May 2021.", "We met Anna Berg in Oslo yesterday.",
    "Hello world, this is a test of tokenizers with punctuation!",
]
WIDTH = dict(hidden=32, layers=2, heads=2, intermediate=64, positions=512)


def _byte_bpe(special: list[str], vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES * 3, trainer)
    return tok


def gpt2(directory: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    raw = _byte_bpe(["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    config = GPT2Config(vocab_size=raw.get_vocab_size(), n_embd=WIDTH["hidden"], n_layer=WIDTH["layers"],
                        n_head=WIDTH["heads"], n_positions=WIDTH["positions"], bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def roberta(directory: Path) -> Path:
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    raw = _byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    raw.post_processor = processors.RobertaProcessing(("</s>", raw.token_to_id("</s>")), ("<s>", raw.token_to_id("<s>")))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    config = RobertaConfig(vocab_size=raw.get_vocab_size(), hidden_size=WIDTH["hidden"], num_hidden_layers=WIDTH["layers"],
                           num_attention_heads=WIDTH["heads"], intermediate_size=WIDTH["intermediate"],
                           max_position_embeddings=WIDTH["positions"] + 2, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    RobertaModel(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def bert(directory: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    raw.train_from_iterator(SENTENCES * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=special))
    raw.post_processor = processors.BertProcessing(("[SEP]", raw.token_to_id("[SEP]")), ("[CLS]", raw.token_to_id("[CLS]")))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=raw.get_vocab_size(), hidden_size=WIDTH["hidden"], num_hidden_layers=WIDTH["layers"],
                        num_attention_heads=WIDTH["heads"], intermediate_size=WIDTH["intermediate"],
                        max_position_embeddings=WIDTH["positions"], pad_token_id=0)
    BertModel(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def build(name: str, directory: Path) -> Path:
    """The named tiny backbone in `directory`, its random weights seeded (the same on every run)."""
    import torch

    torch.manual_seed(0)
    return BUILDERS[name](directory)


BUILDERS = {"gpt2": gpt2, "roberta": roberta, "bert": bert}
KINDS = {"gpt2": "causal", "roberta": "encoder", "bert": "encoder"}
LORA_TARGETS = {"gpt2": ["c_attn"], "roberta": ["query", "value"], "bert": ["query", "value"]}
