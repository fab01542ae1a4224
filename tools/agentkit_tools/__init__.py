"""Built-in tools: code, browser, search (installed as agentkit_tools)."""
