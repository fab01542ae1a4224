"""Example: a research agent that searches a local index and browses with Chromium."""
