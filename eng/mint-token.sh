#!/usr/bin/env bash
# Mints a Supabase-shaped access token (HS256) for local runs, signed with the local dev secret that
# eng/run-local.sh gives every service (or with $Auth__JwtSecret when set).
#
#   eng/mint-token.sh                      a token for a fixed local test user, valid for 24 h
#   eng/mint-token.sh <user-uuid> [--anonymous] [--admin] [--ttl <seconds>]
#
#   token=$(eng/mint-token.sh); curl -H "Authorization: Bearer $token" http://127.0.0.1:5080/api/repos
set -euo pipefail

secret="${Auth__JwtSecret:-cotex-local-development-secret-change-me-0123456789}"
sub="00000000-0000-4000-8000-000000000001"
anonymous=false
role='{}'
ttl=86400
while [ $# -gt 0 ]; do
  case "$1" in
    --anonymous) anonymous=true ;;
    --admin) role='{"role":"admin"}' ;;
    --ttl) ttl="$2"; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) sub="$1" ;;
  esac
  shift
done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header='{"alg":"HS256","typ":"JWT"}'
payload=$(printf '{"sub":"%s","aud":"authenticated","role":"authenticated","email":"%s@local.test","is_anonymous":%s,"app_metadata":%s,"iat":%d,"exp":%d}' \
  "$sub" "${sub:0:8}" "$anonymous" "$role" "$now" "$((now + ttl))")
unsigned="$(printf '%s' "$header" | b64url).$(printf '%s' "$payload" | b64url)"
signature=$(printf '%s' "$unsigned" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
printf '%s.%s\n' "$unsigned" "$signature"
