#!/bin/sh
# Starts Envoy with the metering token filled into its bootstrap, so that no token is ever
# committed to envoy.yaml, put on a command line (ps shows those) or baked into an image.
#
# docker-compose.yml runs it as the envoy service's entrypoint, with Envoy's usual arguments
# (`-c /etc/envoy/envoy.yaml ...`). It
#   1. takes the token from $QUOTA_METERING_TOKEN, else from the file the authority generated
#      ($QUOTA_METERING_TOKEN_FILE, default /run/quota-authority/metering-token: the authority's
#      data volume, mounted read-only);
#   2. copies the -c file with "Bearer REPLACE-WITH-QUOTA-METERING-TOKEN" replaced by the token
#      into a private directory (mode 0700, file 0600, owned by the user Envoy runs as);
#   3. hands the arguments, -c now naming the copy, to the image's own entrypoint, which drops
#      root and runs Envoy.
# It runs as root (the image's default) so it can read the authority's 0600 token file; Envoy
# itself then runs as uid 101 and cannot read the rest of that volume.
set -eu

placeholder='REPLACE-WITH-QUOTA-METERING-TOKEN'
token_file="${QUOTA_METERING_TOKEN_FILE:-/run/quota-authority/metering-token}"
next="${ENVOY_ENTRYPOINT:-/docker-entrypoint.sh}"

fail() {
  echo "envoy entrypoint: $*" >&2
  exit 1
}

token="${QUOTA_METERING_TOKEN:-}"
if [ -z "$token" ]; then
  [ -s "$token_file" ] || fail "no metering token: set QUOTA_METERING_TOKEN or start quota-authority first (it writes $token_file)"
  token=$(tr -d '\r\n' < "$token_file")
fi
# The characters of a bearer token (RFC 6750 b64token). This also keeps the value safe inside
# the sed replacement below and inside envoy.yaml's double-quoted YAML string.
case "$token" in
  '' | *[!A-Za-z0-9._~+/=-]*) fail "the metering token may hold only A-Z a-z 0-9 . _ ~ + / = -" ;;
esac

dir=$(mktemp -d)
rendered="$dir/envoy.yaml"
config=''
prev=''
# Rebuild the argument list with the -c / --config-path value pointing at the rendered copy.
for arg do
  shift
  if [ "$prev" = "-c" ] || [ "$prev" = "--config-path" ]; then
    config="$arg"
    arg="$rendered"
  fi
  prev="$arg"
  set -- "$@" "$arg"
done
[ -n "$config" ] || fail "no -c <envoy.yaml> among the arguments"
grep -q "Bearer $placeholder" "$config" || fail "$config has no 'Bearer $placeholder' to fill in"

(umask 077 && sed "s|Bearer $placeholder|Bearer $token|" "$config" > "$rendered")
if [ "$(id -u)" = 0 ] && [ "${ENVOY_UID:-}" != 0 ]; then
  # The image's entrypoint runs Envoy as the "envoy" user (uid 101, or $ENVOY_UID once it has
  # renumbered that user): that user must be able to read the copy, nobody else.
  owner="${ENVOY_UID:-$(id -u envoy 2>/dev/null || true)}"
  [ -n "$owner" ] || fail "no 'envoy' user to hand the rendered config to; set ENVOY_UID"
  chown -R "$owner" "$dir"
fi

exec "$next" "$@"
