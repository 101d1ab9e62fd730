"""Fuzzing the decoders with hostile, correctly sealed objects (see test_fuzz_decoders.py)."""
