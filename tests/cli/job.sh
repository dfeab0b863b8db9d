#!/bin/sh
# A job for the grove CLI tests: job.sh MODE NAME LOG
#   obey    on SIGTERM/SIGINT/SIGHUP: logs it and exits 1
#   slow    logs it, cleans up for 0.3 s (logs "cleaned up"), exits 1
#   ignore  logs it and carries on; its grandchild ignores them too
#   escape  like obey, and its grandchild escaped with setsid
#   escape-stubborn  like escape, and the escapee ignores SIGTERM/SIGINT/SIGHUP
# Every job starts a grandchild `sleep 1000` first, then prints "NAME started".
mode=$1 name=$2 log=$3
on_signal() {
  echo "$name got $1" >> "$log"
  case $mode in
    slow) sleep 0.3; echo "$name cleaned up" >> "$log"; exit 1 ;;
    ignore) ;;
    *) exit 1 ;;
  esac
}
for s in TERM INT HUP; do trap "on_signal $s" "$s"; done
case $mode in
  ignore) (trap '' TERM INT HUP; exec sleep 1000) & ;;
  escape) setsid sleep 1000 & ;;
  escape-stubborn) setsid sh -c "trap '' TERM INT HUP; exec sleep 1000" & ;;
  *) sleep 1000 & ;;
esac
echo "$name started"
while :; do wait; sleep 1; done
