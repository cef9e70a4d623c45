#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through playwright-core (never a downloaded
# browser). Installs it when it is missing; CI runs this as root on a fresh machine.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "Chromium not found at /usr/bin/chromium: installing Debian's chromium package"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update && apt-get install -y chromium
else
  sudo apt-get update && sudo apt-get install -y chromium
fi
