"""Verify gates: one module each, with NAME and run(ctx) -> list[Finding]."""
