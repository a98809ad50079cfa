"""One module per workflow stage, each with a settings dataclass and a ``run(...)`` callable from Python."""
