"""Training examples from the chat dataset: the model's chat template, loss on the assistant turn only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def encode(records: list[dict[str, Any]], tokenizer: Any, max_length: int) -> list[Example]:
    """Tokenize chat records; every token before the assistant's answer is masked out of the loss."""
    examples = []
    for record in records:
        messages = record["messages"]
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        full_ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
        if full_ids[: len(prompt_ids)] != prompt_ids:  # a template that rewrites earlier turns: mask by length
            prompt_ids = full_ids[: len(prompt_ids)]
        labels = [IGNORE] * len(prompt_ids) + full_ids[len(prompt_ids) :]
        ids, labels = full_ids[:max_length], labels[:max_length]
        if any(label != IGNORE for label in labels):
            examples.append(Example(ids, labels))
    return examples


def batches(examples: list[Example], size: int, pad_id: int) -> list[tuple[Any, Any, Any]]:
    """Padded (input_ids, attention_mask, labels) tensors, in order."""
    import torch

    out = []
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        width = max(len(e.input_ids) for e in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        for row, example in enumerate(chunk):
            n = len(example.input_ids)
            ids[row, :n] = torch.tensor(example.input_ids)
            mask[row, :n] = 1
            labels[row, :n] = torch.tensor(example.labels)
        out.append((ids, mask, labels))
    return out
