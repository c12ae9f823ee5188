"""Prompts built with the model's own chat template."""

from __future__ import annotations


def chat_prompt_ids(tokenizer, user: str, system: str | None = None) -> list[int]:
    """Token ids of a one-turn chat prompt, ending where the assistant starts."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    text = (f"{system}\n\n" if system else "") + user
    return [int(i) for i in tokenizer(text)["input_ids"]]
