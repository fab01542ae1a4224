"""Plug-ins that run agentkit inside RL trainers: :mod:`.verl` (an agent loop and Parquet SFT)
and :mod:`.slime` (a custom generate function and the debug-rollout ``.pt`` writer)."""
