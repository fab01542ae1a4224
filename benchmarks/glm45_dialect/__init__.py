"""Parts of ``benchmarks/bench_glm45_dialect.py``: the corpus of completions, the contenders
(agentkit, its earlier revisions, SGLang), the measurement and the report."""
