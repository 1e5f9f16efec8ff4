"""Analysis of results: the tick-to-trade join and exact statistics
(latency), A/B statistics (compare), poll-loop hiccups (hiccups),
HdrHistogram-compatible histograms (hdr), the numba kernels behind them
(kernels), and reports (report). Reads run directories and tables; runs
nothing."""
