"""Target-agnostic contract suites: the same tests against the mock in-process, any URL, or live."""
