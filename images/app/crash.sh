#!/bin/sh
# pocketkube/crash: prints a line, then exits non-zero after $CRASH_AFTER
# seconds (default 3) with code $EXIT_CODE (default 1): a crash loop.
echo "crash: started on $(hostname), exiting with ${EXIT_CODE:-1} in ${CRASH_AFTER:-3}s"
sleep "${CRASH_AFTER:-3}"
echo "crash: exiting" >&2
exit "${EXIT_CODE:-1}"

