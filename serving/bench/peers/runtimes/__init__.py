"""Standalone peer runtimes (run by path in the peer venvs); ``ortsession`` is importable from the harness too."""
