# core.mk - build rules for kernel_src/core, included by kernel_src/Makefile.
#
# One source, three builds:
#   core-freestanding  every core file with the kernel's flags, warnings fatal
#   core-host          libhftcore.a for the baselines and C tests
#   core-san           libhftcore-san.a with ASan/UBSan, used by the tests
# The cffi extension (hftlab/_build_core.py) compiles the same files itself.

CORE_DIR   ?= $(dir $(lastword $(MAKEFILE_LIST)))
NM         ?= nm
CORE_INC   := $(abspath $(CORE_DIR))
BUILD      ?= build
CORE_SRCS  := $(wildcard $(CORE_DIR)*.c)
CORE_WARN  := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wconversion -Wno-sign-conversion
# Freestanding: only the compiler's own headers are reachable (-nostdinc plus
# its include dir), so an accidental libc include fails to build.
CORE_KFLAGS := -ffreestanding -nostdlib -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
              -fno-stack-protector -fno-pic -fno-pie -mno-red-zone -mno-sse -mno-sse2 -mno-mmx \
              -mno-80387 -mcmodel=small -O2 -fno-builtin-printf
CORE_HFLAGS := -O2 -g -fPIC
CORE_SFLAGS := -O1 -g -fPIC -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer

# The strategy (kernel_src/core/strategy.h): exactly one C file, linked into
# every build as strategy_impl.o. STRATEGY=path/to/x.c (absolute, or relative
# to the directory make runs in) picks it; the default is the bundled
# trigger. $(BUILD)/strategy.path remembers which file the objects hold, so
# a different STRATEGY rebuilds them. Before any build of it, the file is
# compiled freestanding and checked (tools/strategy_check.sh): no libc
# header, no symbol but the core's API, no writable global.
STRATEGY   ?= $(CORE_DIR)../strategies/trigger.c
STRAT_SRC  := $(abspath $(STRATEGY))
STRAT_STAMP := $(BUILD)/strategy.path
STRAT_CHECK := $(abspath $(CORE_DIR)../tools/strategy_check.sh)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(STRAT_STAMP) 2>/dev/null)" = "$(STRAT_SRC)" ] || echo "$(STRAT_SRC)" > $(STRAT_STAMP); })

CORE_K_OBJS := $(patsubst $(CORE_DIR)%.c,$(BUILD)/core-k/%.o,$(CORE_SRCS)) $(BUILD)/core-k/strategy_impl.o
CORE_H_OBJS := $(patsubst $(CORE_DIR)%.c,$(BUILD)/core-h/%.o,$(CORE_SRCS)) $(BUILD)/core-h/strategy_impl.o
CORE_S_OBJS := $(patsubst $(CORE_DIR)%.c,$(BUILD)/core-s/%.o,$(CORE_SRCS)) $(BUILD)/core-s/strategy_impl.o

.PHONY: core-freestanding core-host core-san
core-freestanding: $(CORE_K_OBJS)
core-host: $(BUILD)/libhftcore.a
core-san: $(BUILD)/libhftcore-san.a

$(BUILD)/core-k/%.o: $(CORE_DIR)%.c $(wildcard $(CORE_DIR)*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_KFLAGS) -c $< -o $@
$(BUILD)/core-h/%.o: $(CORE_DIR)%.c $(wildcard $(CORE_DIR)*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_HFLAGS) -c $< -o $@
$(BUILD)/core-s/%.o: $(CORE_DIR)%.c $(wildcard $(CORE_DIR)*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_SFLAGS) -c $< -o $@
$(BUILD)/core-k/strategy_impl.o: $(STRAT_SRC) $(STRAT_STAMP) $(wildcard $(CORE_DIR)*.h) $(STRAT_CHECK)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_KFLAGS) -I$(CORE_INC) -c $(STRAT_SRC) -o $@.tmp
	NM=$(NM) $(STRAT_CHECK) $@.tmp $(STRAT_SRC)
	mv $@.tmp $@
$(BUILD)/core-h/strategy_impl.o: $(BUILD)/core-k/strategy_impl.o
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_HFLAGS) -I$(CORE_INC) -c $(STRAT_SRC) -o $@
$(BUILD)/core-s/strategy_impl.o: $(BUILD)/core-k/strategy_impl.o
	@mkdir -p $(dir $@)
	$(CC) $(CORE_WARN) $(CORE_SFLAGS) -I$(CORE_INC) -c $(STRAT_SRC) -o $@
$(BUILD)/libhftcore.a: $(CORE_H_OBJS)
	$(AR) rcs $@ $^
$(BUILD)/libhftcore-san.a: $(CORE_S_OBJS)
	$(AR) rcs $@ $^
