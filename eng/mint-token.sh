#!/usr/bin/env bash
# Mints a Supabase-shaped access token (HS256) for a local run, signed with the AppHost's jwt-secret parameter: the
# value `dotnet run --project CoTeX.AppHost` generated on its first run and keeps in the AppHost's user secrets
# (Parameters:jwt-secret), or $Auth__JwtSecret when set. The token comes from CoTeX.DevTools (DevTokens.Mint), the
# same minter as the dashboard's "Mint a dev token" command on the api resource, the tests and the benchmarks.
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

# The secret goes in the environment, not on the command line (where any process could read it).
Auth__JwtSecret="$secret" exec dotnet run --project "$repo_root/CoTeX.DevTools" -v quiet -- token "$@"
