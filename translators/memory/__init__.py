"""The in-memory translator: a complete :class:`translators.base.Backend` whose bytes live in
the process (:mod:`translators.memory.backend`), for tests and throw-away gateways."""
