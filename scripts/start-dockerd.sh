#!/usr/bin/env bash
# Starts dockerd in the background when none answers (no systemd here) and waits for it.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd is not installed" >&2; exit 1; }
setsid dockerd --storage-driver=overlay2 --bridge=none --iptables=false --ip-masq=false \
  >/tmp/agentkit-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "dockerd did not start; last log lines:" >&2
tail -20 /tmp/agentkit-dockerd.log >&2
exit 1
