#!/usr/bin/env bash
# make test (and .ci/run) needs Debian's mosquitto: the reference agent's
# two certificate-path tests run against it (agent/mosquitto_test.go).
# Present: nothing to do. Missing: install it with apt-get when this user
# can (root, or sudo without a password prompt), saying so; otherwise stop
# with the command to run. AGENTGATE_SKIP_MOSQUITTO=1 skips the two tests
# deliberately, and says so loudly here and in the test summary.
set -euo pipefail

if [ "${AGENTGATE_SKIP_MOSQUITTO:-}" = 1 ]; then
  cat >&2 <<'MSG'
################################################################################
# AGENTGATE_SKIP_MOSQUITTO=1: the agent's mosquitto tests are SKIPPED
# (TestCertificatePathOnMosquitto, TestRelayKilledOnMosquitto).
# Install Debian's mosquitto (sudo apt-get install mosquitto) to run them.
################################################################################
MSG
  exit 0
fi

if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "make test needs mosquitto (the MQTT broker) and this machine has no apt-get:" >&2
  echo "install mosquitto with your package manager, or run AGENTGATE_SKIP_MOSQUITTO=1 make test to skip its two tests." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt_get=(sudo -n apt-get)
else
  echo "make test needs Debian's mosquitto, which is not installed, and cannot install it without a password:" >&2
  echo "  sudo apt-get install mosquitto" >&2
  echo "then run make test again (or AGENTGATE_SKIP_MOSQUITTO=1 make test to skip its two tests)." >&2
  exit 1
fi
echo "make test: installing Debian's mosquitto for the agent's certificate-path tests (${apt_get[*]} install mosquitto)" >&2
"${apt_get[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends mosquitto >/dev/null
