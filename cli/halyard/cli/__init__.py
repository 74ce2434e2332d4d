"""The `halyard` user command line: dev cluster, demo, benchmarks, fleet simulator."""
