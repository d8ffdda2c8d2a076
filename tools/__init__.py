"""Project tooling that is not shipped: the README generator."""
