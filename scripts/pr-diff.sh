#!/usr/bin/env bash
# pr-diff.sh BASE_REF [OUT_FILE]      (make pr-diff BASE=<git rev> [OUT=file])
#
# Synthesizes BASE_REF (in a temporary git worktree) and the working tree,
# both offline with no AWS credentials, runs `cdk diff --template` for every
# stack, and has stackguard write a Markdown report to OUT_FILE (default
# pr-diff.md; each stack's whole diff goes to OUT_FILE's name + .diffs/):
# the guard's verdict, then every replacement and deletion, then one section
# per stack. Exit status: 0 pass; 1 a stateful resource (static EIPs,
# buckets, DNS records, IoT role alias and policies, ...) would be replaced
# or deleted without an override added in stacks/stackguard-overrides.json
# by this change (docs/pull-requests.md); 2 anything else failed.
# Needs Go, Node.js/npm (the pinned CDK CLI from `make setup`) and git.
#
# Opt-in: PR_DIFF_CACHE=DIR keeps base synths (below); PR_DIFF_HEAD_OUT=DIR
# and PR_DIFF_BASE_OUT=DIR take a cloud assembly already synthesized from
# the working tree or from BASE_REF instead of synthesizing it again. They
# are trusted as they are: a stale assembly gives a wrong report.
set -euo pipefail

base_ref=${1:?usage: pr-diff.sh BASE_REF [OUT_FILE]}
out=${2:-pr-diff.md}
case $out in /*) ;; *) out="$PWD/$out" ;; esac   # relative to the caller
for var in PR_DIFF_HEAD_OUT PR_DIFF_BASE_OUT; do
  dir=${!var:-}
  [ -n "$dir" ] || continue
  case $dir in /*) ;; *) dir="$PWD/$dir" ;; esac
  [ -f "$dir/manifest.json" ] || { echo "pr-diff: $var=$dir is not a cloud assembly (no manifest.json)" >&2; exit 2; }
  printf -v "$var" %s "$dir"
done
diffs_out="${out%.md}.diffs"
root=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$root"
rm -rf "$out" "$diffs_out"
base_commit=$(git rev-parse --verify --quiet "$base_ref^{commit}") || {
  echo "pr-diff: $base_ref is not a commit here (fetch it first, e.g. git fetch origin main)" >&2
  exit 2
}
[ -x node_modules/.bin/cdk ] || { echo "pr-diff: the pinned CDK CLI is missing: run make setup" >&2; exit 2; }

export PATH="$root/node_modules/.bin:$PATH" AWS_EC2_METADATA_DISABLED=true \
  CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true \
  JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
# No credentials may reach a synth: nothing here may call AWS.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
  AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
  AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/agentgate-pr-diff-XXXXXX")
cleanup() {
  git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

synth() { # dir out
  if ! (cd "$1" && cdk synth --quiet -o "$2" >"$2.log" 2>&1); then
    tail -40 "$2.log" >&2
    echo "pr-diff: synth of $1 failed" >&2
    exit 2
  fi
}

if [ -n "${PR_DIFF_HEAD_OUT:-}" ]; then
  echo "== the working tree: the assembly in $PR_DIFF_HEAD_OUT" >&2
  head_out=$PR_DIFF_HEAD_OUT
else
  echo "== synthesizing the working tree" >&2
  head_out="$work/head"
  synth "$root" "$head_out"
fi

echo "== synthesizing $base_ref ($base_commit)" >&2
# Checked out even with PR_DIFF_BASE_OUT: the guard reads its overrides.
git worktree add --quiet --detach "$work/base" "$base_commit" >&2
base_out=-
if [ -n "${PR_DIFF_BASE_OUT:-}" ]; then
  echo "== $base_ref: the assembly in $PR_DIFF_BASE_OUT" >&2
  base_out=$PR_DIFF_BASE_OUT
elif [ -f "$work/base/cdk.json" ]; then
  base_out="$work/base-out"
  # PR_DIFF_CACHE=DIR (opt-in) keeps base synths, keyed by the base's tree
  # and the toolchain that synthesizes it. The head is never cached.
  key=""
  if [ -n "${PR_DIFF_CACHE:-}" ]; then
    key=$( { git rev-parse "$base_commit^{tree}"; cat package-lock.json; go version; node --version; } | sha256sum | cut -c1-32)
  fi
  if [ -n "$key" ] && [ -f "$PR_DIFF_CACHE/$key/manifest.json" ]; then
    echo "== $base_ref: cached synth $PR_DIFF_CACHE/$key" >&2
    cp -r "$PR_DIFF_CACHE/$key" "$base_out"
  else
    # The base builds with the head's pinned CLI; only its templates matter.
    ln -s "$root/node_modules" "$work/base/node_modules"
    synth "$work/base" "$base_out"
    if [ -n "$key" ]; then
      mkdir -p "$PR_DIFF_CACHE"
      rm -rf "$PR_DIFF_CACHE/$key.tmp"
      cp -r "$base_out" "$PR_DIFF_CACHE/$key.tmp" && mv "$PR_DIFF_CACHE/$key.tmp" "$PR_DIFF_CACHE/$key"
    fi
  fi
fi

echo "== cdk diff per stack" >&2
mkdir -p "$work/diffs"
echo '{"Resources":{}}' >"$work/empty.template.json"
diff_stack() { # head template → $work/diffs/STACK.diff
  local stack before
  stack=$(basename "$1" .template.json)
  before="$base_out/$stack.template.json"
  [ "$base_out" != - ] && [ -f "$before" ] || before="$work/empty.template.json"
  # --exclusively: compare this stack alone, not its dependencies.
  if ! cdk diff --exclusively --app "$head_out" --template "$before" "$stack" >"$work/diffs/$stack.diff" 2>&1; then
    cat "$work/diffs/$stack.diff" >&2
    echo "pr-diff: cdk diff of $stack failed" >&2
    return 1
  fi
}
export -f diff_stack
export work head_out base_out
# Two at a time: each is a short Node.js process, mostly start-up.
if ! printf '%s\0' "$head_out"/*.template.json | xargs -0 -P 2 -n 1 bash -c 'diff_stack "$1"' _; then
  exit 2
fi

# A binary, not `go run`, which would turn the guard's exit 2 into 1.
go build -o "$work/stackguard" ./cmd/stackguard || exit 2
cp -r "$work/diffs" "$diffs_out"
set +e
"$work/stackguard" -base-ref "$base_ref" -report "$out" -diffs "$work/diffs" \
  -base-overrides "$work/base/stacks/stackguard-overrides.json" \
  -overrides "$root/stacks/stackguard-overrides.json" \
  "$base_out" "$head_out"
rc=$?
set -e
if [ "$rc" -le 1 ]; then
  echo "pr-diff: report in $out, each stack's whole diff in $diffs_out/" >&2
fi
exit $rc
