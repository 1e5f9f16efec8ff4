"""Utilities every layer may use: atomic file output (io), child processes
that die with hftlab (proc), the environment a result was measured in (env),
the repository's paths (paths). They import nothing else of hftlab."""
