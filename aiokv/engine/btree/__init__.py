"""Copy-on-write B+Tree engine: page formats, the pure tree, the page file and the engine."""
