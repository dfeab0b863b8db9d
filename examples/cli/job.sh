#!/bin/sh
# A demonstration job for the grove command line (scripts/quickstart.sh):
# works for a second or two on its input, and on SIGINT or SIGTERM cleans up
# for a moment before it exits, as a well-behaved program does.
name=$1
cleanup() {
  echo "$name: $1 received, cleaning up"
  sleep 0.3
  echo "$name: cleaned up"
  exit 130
}
trap 'cleanup SIGINT' INT
trap 'cleanup SIGTERM' TERM
echo "$name: working"
sleep "1.$(($(printf '%d' "'$name") % 10))" &
wait $!
echo "$name: done"
