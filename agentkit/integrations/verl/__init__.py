"""agentkit inside verl: a token-mode model over verl's server manager (:mod:`.model`), an
agent loop verl's rollout runs (:mod:`.agent_loop`) and Parquet SFT for verl's multi-turn SFT
dataset (:mod:`.sft`)."""
