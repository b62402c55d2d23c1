#!/bin/sh
# Every Check suite defined in tests/*.c (`Suite *suite_NAME(void)`) is registered in
# tests/suites.h's X-list: a suite left out of the list (e.g. a merge that drops a line
# continuation) would otherwise never run, and the runner could not notice.
cd "$(dirname "$0")/.." || exit 2
defined=$(grep -ho '^Suite \*suite_[a-z0-9_]*(void)' tests/*.c | sed 's/^Suite \*suite_//; s/(void)$//' | sort -u)
listed=$(sed -n 's/^ *X(\([a-z0-9_]*\)) *\\\{0,1\}$/\1/p' tests/suites.h | sort -u)
missing=$(printf '%s\n' "$defined" | grep -vxF "$listed")
if [ -n "$missing" ]; then
    echo "check_suites: defined but not in tests/suites.h's FR_SUITES: $(echo $missing)" >&2
    exit 1
fi
echo "check_suites: $(printf '%s\n' "$defined" | wc -l) suites, all registered"
