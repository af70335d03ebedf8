import torch

from multimodal.generation import loop_start


def test_loop_start_finds_tail_loops():
    assert loop_start([1, 2, 3, 4], max_repeats=3) is None
    assert loop_start([5, 7, 7, 7], max_repeats=3) == 2  # keep one 7
    assert loop_start([9, 1, 2, 1, 2, 1, 2, 1, 2], max_repeats=3) == 3  # keep one "1 2" of the four
    assert loop_start([1, 2, 1, 2], max_repeats=3) is None  # two copies are not a loop yet
    assert loop_start([4, 4, 4], max_repeats=0) is None  # guard off


def test_loop_start_longest_ngram():
    phrase = [10, 11, 12, 13, 14, 15, 16, 17]  # 8 tokens: the longest n-gram the guard looks for
    assert loop_start([1] + phrase * 4, max_repeats=4) == 9


# ---- the guard inside `generate`, on a causal LM whose next token is a fixed function of the current one

EOS = 0  # also the padding token
# The token after each token: 1 -> "2 3 2 3 ..." for ever; 4 -> "4 4 ..."; 5 -> "6 7 8 9" and the end
NEXT = {1: 2, 2: 3, 3: 2, 4: 4, 5: 6, 6: 7, 7: 8, 8: 9, 9: EOS}


class TableModel:
    """What `generate` needs of a MultimodalModel, over a one-layer Llama that writes NEXT[token] after each token:
    its attention and MLP add nothing, one-hot embeddings, and an LM head that maps token i to NEXT[i]."""

    is_causal = True

    def __init__(self):
        from types import SimpleNamespace

        from transformers import LlamaConfig, LlamaForCausalLM

        vocab = 12
        config = LlamaConfig(vocab_size=vocab, hidden_size=vocab, intermediate_size=4, num_hidden_layers=1,
                             num_attention_heads=1, num_key_value_heads=1, tie_word_embeddings=False,
                             bos_token_id=EOS, eos_token_id=EOS, pad_token_id=EOS)
        self.backbone = LlamaForCausalLM(config).eval()
        with torch.no_grad():
            self.backbone.model.embed_tokens.weight.copy_(torch.eye(vocab))
            for layer in self.backbone.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            head = torch.zeros(vocab, vocab)
            for token, following in NEXT.items():
                head[following, token] = 10.0
            self.backbone.lm_head.weight.copy_(head)
        decode = lambda ids, skip_special_tokens: " ".join(str(i) for i in ids if i != EOS)  # noqa: E731
        self.tokenizer = SimpleNamespace(eos_token_id=EOS, pad_token_id=EOS, decode=decode)

    def embed(self, input_ids, *media):
        return self.backbone.get_input_embeddings()(input_ids)  # (B, L, D)


def generate_rows(prompts: list[list[int]], max_repeats: int, max_new_tokens: int = 20):
    """(texts, raw generated ids per row) for left-padded `prompts`."""
    from multimodal.generation import GenerationConfig, generate

    model = TableModel()
    width = max(map(len, prompts))
    input_ids = torch.tensor([[EOS] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    real_generate, raw = model.backbone.generate, []
    model.backbone.generate = lambda **kw: raw.append(real_generate(**kw)) or raw[-1]
    config = GenerationConfig(max_new_tokens=max_new_tokens, max_repeats=max_repeats)
    texts = generate(model, {"input_ids": input_ids, "attention_mask": attention_mask}, config)
    return texts, raw[0].tolist()


def test_the_guard_stops_a_looping_row_and_leaves_the_others():
    prompts = [[3, 1], [5], [7, 4]]  # loops on "2 3"; ends by itself; loops on "4"
    unguarded, raw = generate_rows(prompts, max_repeats=0)
    assert raw[0] == [2, 3] * 10 and raw[2] == [4] * 20  # without the guard both loop to max_new_tokens
    assert unguarded[1] == "6 7 8 9"
    texts, raw = generate_rows(prompts, max_repeats=4)
    # "2 3" is there 4 times back to back after 8 tokens: that row stops there, and its text keeps one copy
    assert raw[0] == [2, 3] * 4
    assert raw[1] == [6, 7, 8, 9, EOS, EOS, EOS, EOS]  # its own EOS, then padding: untouched
    assert raw[2] == [4] * 4 + [EOS] * 4  # stopped after its 4th "4", padded while row 0 went on
    assert texts == ["2 3", "6 7 8 9", "4"]
    alone, _ = generate_rows([[5]], max_repeats=4)
    assert alone == ["6 7 8 9"]  # a row that does not loop gives what it gives alone
