"""gpt2_sampling: Language Models are Unsupervised Multitask Learners (GPT-2)."""
