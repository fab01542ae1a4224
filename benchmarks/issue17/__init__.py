"""One run of every issue-17 goal: the benchmarks it runs, the figures it reads, the table it writes."""
