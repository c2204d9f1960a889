"""Kiln's compiler: the IR, op definitions, printer/parser, verifier and the reference
interpreter (later: passes, autodiff and code generation)."""
