# hftlab top-level Makefile: set-up, the main job, tests; OS targets go to kernel_src/.
#   make setup     system packages (scripts/setup-system.sh), pip install -e '.[test]', then
#                  compiles every numba kernel ahead (python -m hftlab.cli.warm: one line,
#                  the caches land in __pycache__ beside the sources), so no run waits for numba
#   make demo      the main job: HFT-OS under QEMU on the bundled RITCH sample, report
#   make test      the test suite
#   make core      C core: freestanding check (-Werror), host and ASan/UBSan libraries
#   make os        HFT-OS boot loader, runtime and disk image (kernel_src/Makefile)
#   make lab       JupyterLab on notebooks/ (add LAB_ARGS=..., e.g. --no-browser --port=8899;
#                  as root --allow-root is added, Jupyter refuses root without it)
#   make clean     build outputs, runs/, the in-place extension
PYTHON  ?= python3
DATASET ?= datasets/ritch/ex20101224.TEST_ITCH_50
RUN_DIR ?= runs/demo
# The CLI through the interpreter: works right after `make setup`, even where a
# new console script is not yet on PATH (pyenv shims need a rehash).
HFTLAB  ?= $(PYTHON) -m hftlab.cli
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup demo test lab core core-check os bootloader runtime image clean

setup:
	bash scripts/setup-system.sh
	$(PYTHON) -m pip install -e '.[test]'
	$(PYTHON) -m hftlab.cli.warm

# The main job: build HFT-OS, boot it under QEMU (KVM where the CPU has
# hardware virtualization, else TCG), replay the bundled feed through a tap
# (QEMU's dgram netdev without root), check its orders against the golden
# model, and write the run directory with its first latency report.
demo: core-check
	rm -rf $(RUN_DIR)
	$(HFTLAB) run --sut hftos --dataset $(DATASET) --out $(RUN_DIR)

test:
	$(PYTHON) -m pytest -q -rs --durations=15 tests

lab:
	$(PYTHON) -m jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

core:
	$(MAKE) -C kernel_src core-freestanding core-host core-san

# The core must build with the kernel's flags and no warnings before anything runs it.
core-check:
	$(MAKE) -C kernel_src core-freestanding

os: bootloader runtime image

bootloader runtime image:
	$(MAKE) -C kernel_src $@

clean:
	$(MAKE) -C kernel_src clean
	rm -rf build runs *.egg-info hftlab/_core*.so hftlab/_core.c
