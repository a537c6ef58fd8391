# Sourced by backup.sh and restore.sh: read the database URL, keys directory and key source
# from a relay config into CFG_URL, CFG_KEYS and SOURCE (with relay's defaults).
# Needs $PYTHON (3.11+, for tomllib) and a `die` function. Returns non-zero if the file is
# not TOML.
# shellcheck disable=SC2034  # CFG_URL, CFG_KEYS and SOURCE are read by the caller
read_config_paths() {
    {
        read -r CFG_URL
        read -r CFG_KEYS
        read -r SOURCE
    } < <("$PYTHON" - "$1" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    cfg = tomllib.load(f)
print(cfg.get("storage", {}).get("url", "sqlite:///relay-data/relay.db"))
print(cfg.get("keys", {}).get("directory", "relay-keys"))
print(cfg.get("keys", {}).get("source", "directory"))
PY
    )
}

# With -c CONFIG ($CONFIG set): read it, and take its database URL and keys directory
# where --db-url / --keys-dir did not set them. SOURCE is "directory" without a config.
# shellcheck disable=SC2034  # DB_URL and KEYS_DIR are read by the caller
apply_config() {
    SOURCE="directory"
    [ -n "$CONFIG" ] || return 0
    [ -r "$CONFIG" ] || die "cannot read config $CONFIG"
    read_config_paths "$CONFIG" \
        || die "cannot parse $CONFIG as TOML (check it with: relay config check $CONFIG)"
    DB_URL="${DB_URL:-$CFG_URL}"
    KEYS_DIR="${KEYS_DIR:-$CFG_KEYS}"
}
