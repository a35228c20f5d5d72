"""The base of every error quakesnake raises on purpose: bad input, bad configuration, a failed
fetch. Each one's message names the file (or key, or shard) and the reason, so the CLI and the
rule runner print the message alone, without a traceback (the rule's log keeps the traceback).
Each subclass also derives from the built-in error it stands for (``ValueError`` for bad input,
``RuntimeError`` for a failed fetch), so callers that catch those keep working."""


class QuakesnakeError(Exception):
    """An anticipated failure whose message says what to fix."""
