"""A deterministic integration for tests, demos and benchmarks — and the smallest example of one."""
