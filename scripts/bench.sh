#!/usr/bin/env bash
# make bench: the relay next to HAProxy and nginx (proxyimage/cmd/relaybench), one run,
# one table. Installs HAProxy and nginx's stream module from Debian's packages
# if missing (needs root and apt). BENCH_QUICK=1 runs a reduced version.
# Extra arguments go to the bench tool (see `go doc ./proxyimage/cmd/relaybench`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v nginx >/dev/null || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}" >&2
  # Our own instances run on their own ports with their own configs; keep
  # Debian's service scripts from starting the packaged ones.
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# One fixed place per user and checkout, overwritten by each run (exec leaves no
# chance to clean up); two checkouts benchmarking at once keep their own binaries.
dir="${TMPDIR:-/tmp}/agentgate-bench-$(id -u)-$(pwd | cksum | cut -d' ' -f1)"
mkdir -p "$dir"
bin="$dir/bench"
go build -o "$bin" ./proxyimage/cmd/relaybench
exec "$bin" "$@"
