#!/bin/sh
# strategy_check.sh OBJ SRC - refuse a strategy object that breaks the rules
# of kernel_src/core/strategy.h, naming the symbol (and the first source line
# that mentions it):
#   - an undefined symbol other than the core API a strategy may call;
#   - a writable global (state belongs in the strategy state struct);
#   - a missing hook (strategy_init, strategy_on_book, STRATEGY_STATE).
# Used by kernel_src/core/core.mk and by hftlab's golden-model loader.
set -eu
obj=$1
src=$2
NM=${NM:-nm}
ALLOWED="memcpy memset memmove memcmp book_depth"
where() {
	line=$(grep -n -w -- "$1" "$src" 2>/dev/null | head -n 1 | cut -d: -f1)
	if [ -n "$line" ]; then echo "$src:$line"; else echo "$src"; fi
}
status=0
for sym in $($NM -u "$obj" | awk '{ print $NF }'); do
	case " $ALLOWED " in
	*" $sym "*) ;;
	*) echo "$(where "$sym"): error: strategy references undefined symbol '$sym'" \
		"(a strategy may call only the inline helpers of strategy.h and: $ALLOWED)" >&2
	   status=1 ;;
	esac
done
# Writable data: D/d (.data), B/b (.bss), C (common), G/g S/s (small data).
for sym in $($NM "$obj" | awk '$2 ~ /^[DdBbCGgSs]$/ { print $3 }'); do
	name=${sym%%.*}
	echo "$(where "$name"): error: strategy has writable global '$name'" \
		"(keep state in the struct given to STRATEGY_STATE)" >&2
	status=1
done
for sym in strategy_init strategy_on_book strategy_state_size strategy_wake; do
	if ! $NM "$obj" | awk -v s="$sym" '$3 == s && $2 ~ /^[TR]$/ { f = 1 } END { exit !f }'; then
		echo "$src: error: strategy does not define '$sym'" \
			"(see kernel_src/core/strategy.h: STRATEGY_STATE, strategy_init, strategy_on_book)" >&2
		status=1
	fi
done
exit $status
