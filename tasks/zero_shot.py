"""Prompts for classifying by label likelihood: the labels listed in an instruction, optional worked examples.

With a chat model the instruction is the system turn and every in-context example (shot) is a user turn
("Text: ...") answered by an assistant turn (the label); the text to classify is the last user turn, and each
candidate label is scored as the assistant's answer. Without a chat template the same content is plain text
ending in "Category:", and each label is scored after a space.
"""

from __future__ import annotations

INSTRUCTION = "Classify the text into exactly one of these categories: {labels}. Answer with the category only."


def instruction(labels: list[str]) -> str:
    return INSTRUCTION.format(labels=", ".join(labels))


def chat_messages(text: str, labels: list[str], shots: list[tuple[str, str]] = ()) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": instruction(labels)}]
    for shot_text, shot_label in shots:
        messages += [{"role": "user", "content": f"Text: {shot_text}"}, {"role": "assistant", "content": shot_label}]
    return messages + [{"role": "user", "content": f"Text: {text}"}]


def plain_prompt(text: str, labels: list[str], shots: list[tuple[str, str]] = ()) -> str:
    examples = "".join(f"Text: {t}\nCategory: {label}\n\n" for t, label in shots)
    return f"{instruction(labels)}\n\n{examples}Text: {text}\nCategory:"
