"""The live smoke suite (`pytest contracts/live --target live`) and its doc-drift report."""
