"""Release checks: the distributions, the README's links, the single version source."""
