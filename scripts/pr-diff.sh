#!/usr/bin/env bash
# pr-diff.sh BASE_REF [OUT_FILE]
#
# Synthesizes the base revision and the working tree offline, writes
# `cdk diff --template` of every stack into OUT_FILE (Markdown, default
# pr-diff.md), then runs stackguard, which fails (exit 1) on any change that
# would destroy or replace a stateful resource — the static EIPs above all.
# Reviewed, deliberate exceptions: STACKGUARD_ALLOW="stack/LogicalId,...".
# Needs no AWS credentials: only Go, Node.js/npm and git.
set -euo pipefail

base_ref=${1:?usage: pr-diff.sh BASE_REF [OUT_FILE]}
out=${2:-pr-diff.md}
root=$(git rev-parse --show-toplevel)
cd "$root"
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

export PATH="$root/node_modules/.bin:$PATH" CDK_DISABLE_CLI_TELEMETRY=true \
  CDK_DISABLE_VERSION_CHECK=true AWS_EC2_METADATA_DISABLED=true

echo "== synthesizing head" >&2
make -s synth >&2
cp -r cdk.out "$work/head"

echo "== synthesizing base ($base_ref)" >&2
git worktree add --detach "$work/base" "$base_ref" >&2
if [ -f "$work/base/cdk.json" ]; then
  # The base builds with the head's pinned toolchain: only its templates matter.
  ln -s "$root/node_modules" "$work/base/node_modules"
  (cd "$work/base" && cdk synth --quiet -o "$work/base-out" >&2)
else
  mkdir -p "$work/base-out"   # the base predates the CDK app: everything is new
fi

empty="$work/empty.template.json"
echo '{"Resources":{}}' >"$empty"
{
  echo "## cdk diff: \`$base_ref\` → head"
  echo
  for tmpl in "$work"/head/*.template.json; do
    stack=$(basename "$tmpl" .template.json)
    before="$work/base-out/$stack.template.json"
    [ -f "$before" ] || before=$empty
    echo "<details><summary>$stack</summary>"
    echo
    echo '```'
    cdk diff --app "$work/head" --template "$before" "$stack" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' || true
    echo '```'
    echo "</details>"
  done
  for tmpl in "$work"/base-out/*.template.json; do
    [ -e "$tmpl" ] || continue
    stack=$(basename "$tmpl" .template.json)
    [ -f "$work/head/$stack.template.json" ] || echo "- **stack removed:** $stack"
  done
  echo
  echo "### stackguard"
  echo '```'
} >"$out"

set +e
if ls "$work"/base-out/*.template.json >/dev/null 2>&1; then
  go run ./cmd/stackguard -allow "${STACKGUARD_ALLOW:-}" "$work/base-out" "$work/head" >>"$out" 2>&1
  rc=$?
else
  echo "stackguard: the base has no stacks; nothing to protect" >>"$out"
  rc=0
fi
set -e
echo '```' >>"$out"
cat "$out"
exit $rc
