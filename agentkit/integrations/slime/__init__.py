"""agentkit inside slime: ``--custom-generate-function-path
agentkit.integrations.slime.generate.generate`` and the debug-rollout writer (:mod:`.pt`)."""
