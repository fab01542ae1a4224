"""tau2-bench's domains (telecom with its dual-control phone, retail, airline) for agentkit."""
