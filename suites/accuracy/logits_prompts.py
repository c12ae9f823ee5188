"""The fixed prompt set whose logits are compared with ``.npy`` baselines.

Short chat prompts of different kinds, built with the model's chat template.
The profile's ``logits.prompts`` takes the first N; ids name the baseline files,
so an entry may be added at the end but never changed or reordered without
recording the baselines again.
"""

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
