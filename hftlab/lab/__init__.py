"""The lab bench: building HFT-OS (build), QEMU (vm), the run's network and
capture (net), the exchange simulator (exchange), the Linux guest (guest),
the Linux baselines (baselines) and the SUT's serial dump (sutlog). Each
piece is a tool an experiment uses; none knows about experiments or
analysis."""
