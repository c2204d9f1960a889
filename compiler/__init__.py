"""Kiln's compiler: the IR, op definitions, printer/parser, verifier, reference interpreter,
pass pipeline, fusion and code generation."""

__version__ = "0.1.0"
