"""The actors (pykka): one module per actor, its messages beside it."""
