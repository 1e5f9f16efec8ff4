# hftlab top-level Makefile: set-up, the main job, tests; OS targets go to kernel_src/.
#   make setup     pip install -e '.[test]' (builds the cffi core from kernel_src/core)
#   make demo      the main job: the golden model on the bundled RITCH sample
#   make test      the test suite
#   make core      C core: freestanding check (-Werror), host and ASan/UBSan libraries
#   make os        HFT-OS boot loader, runtime and disk image (kernel_src/Makefile)
#   make clean     build outputs, runs/, the in-place extension
PYTHON  ?= python3
DATASET ?= datasets/ritch/ex20101224.TEST_ITCH_50
RUN_DIR ?= runs/demo
# The CLI through the interpreter: works right after `make setup`, even where a
# new console script is not yet on PATH (pyenv shims need a rehash).
HFTLAB  ?= $(PYTHON) -m hftlab.cli

.PHONY: setup demo test core core-check os bootloader runtime image clean

setup:
	$(PYTHON) -m pip install -e '.[test]'

# For now the main job runs the golden model; once HFT-OS runs end to end
# (issue 3) this becomes `hftlab run --sut hftos`.
demo: core-check
	@mkdir -p $(RUN_DIR)
	$(HFTLAB) golden --dataset $(DATASET) --out $(RUN_DIR)/golden.parquet

test:
	$(PYTHON) -m pytest -q tests

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
