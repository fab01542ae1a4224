"""Scale benchmark: rollouts of many episodes, one process against local Ray."""
