#!/bin/sh
# Spike: can the kernel carry a judged connection's bytes faster than a relay
# copies them? A 256 MiB download on loopback, direct, through a read/write
# relay and through a sockmap relay (sk_skb verdict redirecting each socket's
# bytes to its peer; PLAIN=1 attaches it without the stream parser), taken
# in turn, three rounds. Loopback only. Run as root (bpf).
#   sh scripts/spikes/sockmap-relay.sh
set -eu
cd "$(dirname "$0")"
dir=$(mktemp -d /tmp/warren-sockmap-spike.XXXXXX)
trap 'kill $SRC 2>/dev/null; rm -rf "$dir"' EXIT
cc -O2 -o "$dir/relay" sockmap-relay.c
N=$((256 << 20))
python3 sockmap-source.py 47001 $N > /dev/null &
SRC=$!
sleep 0.5
for r in 1 2 3; do
  d=$("$dir/relay" read 47001 $N)
  "$dir/relay" copy $((47020 + r)) 47001 > /dev/null & P=$!; sleep 0.2
  c=$("$dir/relay" read $((47020 + r)) $N); kill $P 2>/dev/null || true
  "$dir/relay" sockmap $((47010 + r)) 47001 > /dev/null & P=$!; sleep 0.2
  m=$(timeout 30 "$dir/relay" read $((47010 + r)) $N); kill $P 2>/dev/null || true
  echo "round $r: direct $d MiB/s, read/write relay $c MiB/s, sockmap relay $m MiB/s"
done
