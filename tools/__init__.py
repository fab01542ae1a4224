"""Built-in tools: code, browser, search (installed as agentkit.tools)."""
