#!/bin/bash
# Runs every test phase given on the command line (each one a make target), whatever the
# phases before it did, prints each phase's result and time, then a summary; fails at the end
# when any phase failed.  `make test` calls it with $(TEST_PHASES); the make command line for
# each phase comes from $PHASE_MAKE (default: make), so the phases share one build.
#
#   tests/run-phases.sh format-check asan fuzz unit-tests integration-tests
set -u
make_cmd=${PHASE_MAKE:-make --no-print-directory}
names=() results=() times=()
passed=0 failed=0
for phase in "$@"; do
	echo
	echo "======== phase $phase: $make_cmd $phase"
	start=$(date +%s)
	if eval "$make_cmd" '"$phase"'; then
		result=passed passed=$((passed + 1))
	else
		result=FAILED failed=$((failed + 1))
	fi
	secs=$(($(date +%s) - start))
	echo "======== phase $phase: $result (${secs}s)"
	names+=("$phase") results+=("$result") times+=("$secs")
done
echo
echo "======== test phases"
for i in "${!names[@]}"; do
	printf '  %-22s %-7s %5ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
echo "phases: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
