"""Model dialects: how a model family's prompts are rendered and its raw output is parsed."""
