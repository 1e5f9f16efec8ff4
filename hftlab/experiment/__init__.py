"""Experiments: one run end to end (run, with its spec, the steps HFT-OS and
the baselines share, and the baselines' own path), a study of several SUTs
(study), and the notebook API's objects (api: Run, Study, Comparison)."""
