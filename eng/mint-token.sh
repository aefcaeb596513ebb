#!/usr/bin/env bash
# Mints a Supabase-shaped access token (HS256) for a local run, signed with the AppHost's jwt-secret parameter: the
# value `dotnet run --project CoTeX.AppHost` generated on its first run and keeps in the AppHost's user secrets
# (Parameters:jwt-secret), or $Auth__JwtSecret when set. The dashboard's "Mint a dev token" command on the api
# resource gives the same token.
#
#   eng/mint-token.sh                      a token for the local dev user, valid for 24 h
#   eng/mint-token.sh <user-uuid> [--anonymous] [--admin] [--ttl <seconds>]
#
#   token=$(eng/mint-token.sh); curl -H "Authorization: Bearer $token" http://localhost:5080/api/repos
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

apphost_secret() {
  local id file
  id=$(grep -oE '<UserSecretsId>[^<]+' "$repo_root/CoTeX.AppHost/CoTeX.AppHost.csproj" | cut -d'>' -f2)
  file="${HOME}/.microsoft/usersecrets/$id/secrets.json"
  [ -f "$file" ] && grep -oE '"Parameters:jwt-secret": *"[^"]+"' "$file" | sed -E 's/.*: *"([^"]+)"/\1/'
}

secret="${Auth__JwtSecret:-$(apphost_secret || true)}"
if [ -z "$secret" ]; then
  echo "No JWT secret: run 'dotnet run --project CoTeX.AppHost' once (it generates one and keeps it in its user" \
    "secrets), or set Auth__JwtSecret." >&2
  exit 1
fi

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
