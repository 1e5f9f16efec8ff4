"""The trading model: the C core through cffi (core: ITCH decoding into
Arrow, the engine, the golden model), the systems under test (suts),
synthetic ITCH feeds (synth) and the core's cost per message (microbench).
Depends only on util and errors."""
