#!/usr/bin/env bash
# Synthesizes the committed HEAD in two fresh directories (git archive, no
# .git, different paths) with the real CDK CLI and local Go bundling, and
# fails unless every Go Lambda asset hash (the S3Key of each function whose
# handler is "bootstrap") is identical in both. Offline; no AWS credentials.
#
#   scripts/lambda-asset-hash-check.sh            # compare two directories
#   KEEP=1 scripts/lambda-asset-hash-check.sh     # keep the directories
set -euo pipefail
root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$root" rev-parse HEAD)
work=$(mktemp -d /tmp/agentgate-hash-XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
export AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
export PATH="$root/node_modules/.bin:$PATH"

hashes() { # dir → "stack logicalId s3key" lines for the Go Lambdas
  python3 - "$1" <<'PY'
import json, glob, sys, os
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.template.json"))):
    t = json.load(open(f))
    for lid, r in sorted(t.get("Resources", {}).items()):
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Lambda::Function" and p.get("Handler") == "bootstrap":
            print(os.path.basename(f).removesuffix(".template.json"), lid, p["Code"]["S3Key"])
PY
}

for name in a/checkout b/some/deeper/checkout; do
  dir="$work/$name"
  mkdir -p "$dir"
  git -C "$root" archive "$commit" | tar -x -C "$dir"
  ln -s "$root/node_modules" "$dir/node_modules"
  (cd "$dir" && cdk synth --quiet -o "$dir/cdk.out" >"$dir/synth.log" 2>&1) || { tail -20 "$dir/synth.log"; exit 1; }
  hashes "$dir/cdk.out" >"$work/$(basename "$(dirname "$dir")")-$(basename "$dir").txt"
done
a=$(ls "$work"/*.txt | head -1); b=$(ls "$work"/*.txt | tail -1)
echo "commit $commit"
cat "$a"
if [ ! -s "$a" ]; then echo "no Go Lambda assets found"; exit 1; fi
if diff -u "$a" "$b"; then echo "OK: identical Go Lambda asset hashes from two directories"; else echo "FAIL: asset hashes differ"; exit 1; fi
