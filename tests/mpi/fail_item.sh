# A deliberately failing item (SCANFLASH_FAIL_ITEM=KEY, the documented
# testing aid) is recorded with status error and its message while every
# other item succeeds; the run exits 0 and lists it. --resume leaves it be,
# --resume --retry-failed runs it again.
. "$(dirname "$0")/lib.bash"
sweep=(--model tiny-mamba1,tiny-transformer --context 256 --batch 1,2 --gen 8 --problems 0-3 --repeats 2)
plan_keys "${sweep[@]}" >"$tmp/plan"
bad=$(sed -n 3p "$tmp/plan")
total=$(wc -l <"$tmp/plan")
echo "failing $bad of $total items"

for n in 0 3; do
  f="$tmp/np$n.h5"
  if [ $n = 0 ]; then
    SCANFLASH_FAIL_ITEM=$bad alone run "${sweep[@]}" -o "$f" >"$tmp/out" 2>"$tmp/err"
  else
    SCANFLASH_FAIL_ITEM=$bad mpi "$n" run "${sweep[@]}" -o "$f" >"$tmp/out" 2>"$tmp/err"
  fi
  rc=$?
  check "ranks $n: exit 0 with a failed item" test $rc -eq 0
  check "ranks $n: complete" complete "$f" "$tmp/plan"
  check "ranks $n: the item is an error with the injected message" \
    test "$(file_lines "$f" | grep "^$bad ")" = "$bad error 0 0 injected failure (SCANFLASH_FAIL_ITEM)"
  check "ranks $n: every other item ok" test "$(count_status "$f" ok)" -eq $((total - 1))
  check "ranks $n: the failure is listed on stderr" grep -q "^  $bad .*injected failure" "$tmp/err"
  check "ranks $n: progress and the end line on stderr" grep -q "done: $total/$total items, 1 failed" "$tmp/err"
done

f="$tmp/np3.h5"
expect_ok mpi 2 run "${sweep[@]}" -o "$f" --resume
check "--resume: nothing to run again" grep -q "0 item(s) to run" "$tmp/err"
check "--resume: still an error" test "$(file_lines "$f" | grep "^$bad " | cut -d' ' -f2)" = error
expect_ok mpi 2 run "${sweep[@]}" -o "$f" --resume --retry-failed
check "--retry-failed: one item ran" grep -q "1 item(s) to run" "$tmp/err"
check "--retry-failed: now ok, once" test "$(file_lines "$f" | grep -c "^$bad ok ")" -eq 1
check "--retry-failed: complete, all ok" test "$(count_status "$f" ok)" -eq "$total"
check "--retry-failed: keys once each" complete "$f" "$tmp/plan"
finish
