"""The fixed prompt set whose logits are compared with ``.npy`` baselines.

Short chat prompts of different kinds, built with the model's chat template.
The profile's ``logits.prompts`` takes the first N; ids name the baseline files,
so an entry may be added at the end but never changed or reordered without
recording the baselines again.
"""

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.errors import UsageError
from pytest_llmperf.metrics.logits import LogitsPrompt

PROMPTS = (
    ("sky-blue", "Why is the sky blue? Answer in one sentence."),
    ("capital-japan", "What is the capital of Japan?"),
    ("haiku-autumn", "Write a haiku about autumn leaves."),
    ("python-reverse", "How do I reverse a list in Python?"),
    ("photosynthesis", "Explain photosynthesis to a ten-year-old."),
    ("count-french", "Count from one to five in French."),
    ("tea-or-coffee", "Give one reason to drink tea instead of coffee."),
    ("binary-seven", "What is the number 7 written in binary?"),
)


def logits_prompts(tokenizer, count: int, where: str) -> list[LogitsPrompt]:
    """The first ``count`` prompts, tokenized; ``where`` names the profile for errors."""
    if not 1 <= count <= len(PROMPTS):
        raise UsageError(f"{where}: logits.prompts = {count}", f"must be between 1 and {len(PROMPTS)}",
                         "the fixed set is in suites/accuracy/logits_prompts.py; add prompts at its end")
    return [LogitsPrompt(prompt_id, text, tuple(chat_prompt_ids(tokenizer, text)))
            for prompt_id, text in PROMPTS[:count]]
