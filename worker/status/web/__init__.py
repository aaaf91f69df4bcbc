"""``darkroom serve``: the read-only status page (see docs/operating.md)."""
