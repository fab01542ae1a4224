"""tau2-bench support: dual-control domains (telecom), tau2's evaluation, and its replay."""
