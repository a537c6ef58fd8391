#!/usr/bin/env bash
# Back up relay: the database, the keys, and signal-cli's data, as SEPARATE archives.
#
# Why separate:
# - The database holds only ciphertext: without the keys it is unreadable, and with them
#   it is everything. Keep the keys archive apart from the database archive (another
#   medium, another place, other people), so one stolen copy is not enough.
# - A keys backup defeats crypto-shredding while it exists (`relay purge` destroys old
#   epoch keys; an old keys archive still has them). Give keys archives the same
#   retention as the data, on encrypted storage.
# - signal-cli's data directory is the bot account itself (identity keys, registration)
#   plus contacts and attachments in PLAINTEXT. It lets you restore the number without
#   registering again, and must be guarded like the keys.
#
# The SQLite database is copied with SQLite's online backup API (a consistent snapshot
# even while relay writes), never with cp. PostgreSQL is dumped with `pg_dump -Fc`.
# Every file is created with umask 077 and carries the same UTC timestamp, plus a
# .sha256 file that restore.sh checks.
#
# Environment: PYTHON (default python3: reads the config, copies SQLite), PG_DUMP
# (default pg_dump; e.g. "docker compose -f deploy/compose.yaml exec -T postgres pg_dump"
# to run the server's own pg_dump inside its container).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=config-paths.sh
. "$(dirname "$0")/config-paths.sh"
umask 077

usage() {
    cat <<'EOF'
usage: backup.sh -c CONFIG -o OUTDIR [--keys-out DIR] [--db-url URL] [--keys-dir DIR]
                 [--root-credential FILE | --no-root-credential] [--signal-cli-dir DIR]
       backup.sh --db-url URL --keys-dir DIR -o OUTDIR ...   (without a config file)

  -c, --config FILE         relay.toml: storage.url, keys.directory, keys.source
  -o, --out DIR             where the database (and signal-cli) archives go
  --keys-out DIR            where the keys archive goes (default: OUTDIR). Use another
                            medium than the database backup.
  --db-url URL              override storage.url (e.g. the host path of a container's DB)
  --keys-dir DIR            override keys.directory (e.g. deploy/state/keys)
  --root-credential FILE    keys.source = "credentials": the plain 32-byte root secret
                            to store with the keys (e.g. deploy/secrets/relay-root)
  --no-root-credential      keys.source = "credentials", and you keep the root secret
                            elsewhere (restore will need it)
  --signal-cli-dir DIR      also archive signal-cli's data directory (stop
                            signal-cli-rest-api first: it is a live database)

Writes relay-db-<UTC>.sqlite|.pgdump, relay-keys-<UTC>.tar, signal-cli-<UTC>.tar.gz,
each with a .sha256 file. Relative paths in the config are taken from the current
directory, as relay itself does.
EOF
}

die() {
    echo "backup.sh: $*" >&2
    exit 1
}

CONFIG="" OUT="" KEYS_OUT="" DB_URL="" KEYS_DIR="" ROOT_CRED="" NO_ROOT=0 SIGNAL_DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        -c|--config) CONFIG="${2:?}"; shift 2 ;;
        -o|--out) OUT="${2:?}"; shift 2 ;;
        --keys-out) KEYS_OUT="${2:?}"; shift 2 ;;
        --db-url) DB_URL="${2:?}"; shift 2 ;;
        --keys-dir) KEYS_DIR="${2:?}"; shift 2 ;;
        --root-credential) ROOT_CRED="${2:?}"; shift 2 ;;
        --no-root-credential) NO_ROOT=1; shift ;;
        --signal-cli-dir) SIGNAL_DIR="${2:?}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

PYTHON="${PYTHON:-python3}"
PG_DUMP="${PG_DUMP:-pg_dump}"
command -v "${PYTHON%% *}" >/dev/null || die "$PYTHON not found; set PYTHON=/opt/relay/.venv/bin/python"
[ -n "$OUT" ] || { usage >&2; die "give -o OUTDIR"; }
KEYS_OUT="${KEYS_OUT:-$OUT}"

apply_config
[ -n "$DB_URL" ] || die "no database: give -c CONFIG or --db-url URL"
[ -n "$KEYS_DIR" ] || die "no keys directory: give -c CONFIG or --keys-dir DIR"
[ -d "$KEYS_DIR" ] || die "keys directory $KEYS_DIR does not exist"
if [ "$SOURCE" = "credentials" ] && [ -z "$ROOT_CRED" ] && [ "$NO_ROOT" -eq 0 ]; then
    die "keys.source is 'credentials', so the keys directory alone cannot open anything:" \
        "pass --root-credential FILE (the plain 32-byte root secret) or" \
        "--no-root-credential if you keep that secret elsewhere"
fi
if [ -n "$ROOT_CRED" ]; then
    [ -r "$ROOT_CRED" ] || die "cannot read root credential $ROOT_CRED"
    [ "$(wc -c < "$ROOT_CRED")" -eq 32 ] \
        || die "$ROOT_CRED is not a 32-byte root secret (an encrypted systemd credential" \
               "only opens on its own host: back up the plain secret)"
fi
[ -z "$SIGNAL_DIR" ] || [ -d "$SIGNAL_DIR" ] || die "signal-cli directory $SIGNAL_DIR does not exist"

mkdir -p "$OUT" "$KEYS_OUT"
TS="$(date -u +%Y%m%dT%H%M%SZ)"
WRITTEN=()

finish() {  # checksum, then move into place: a half-written file never has the final name
    local tmp="$1" final="$2"
    mv "$tmp" "$final"
    (cd "$(dirname "$final")" && sha256sum "$(basename "$final")" > "$(basename "$final").sha256")
    WRITTEN+=("$final")
}

# -- 1. the database --------------------------------------------------------------------
case "$DB_URL" in
    sqlite:///*)
        DB_PATH="${DB_URL#sqlite:///}"
        [ -f "$DB_PATH" ] || die "database $DB_PATH (storage.url) does not exist"
        FINAL="$OUT/relay-db-$TS.sqlite"
        "$PYTHON" - "$DB_PATH" "$FINAL.part" <<'PY'
import sqlite3, sys
from urllib.parse import quote
src = sqlite3.connect("file:" + quote(sys.argv[1]) + "?mode=rw", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.execute("PRAGMA busy_timeout=10000")
src.backup(dst)  # online backup API: a consistent snapshot, WAL included
src.close()
dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
dst.close()
if ok != "ok":
    sys.exit("backup.sh: the database copy fails PRAGMA integrity_check")
PY
        finish "$FINAL.part" "$FINAL"
        ;;
    postgresql+psycopg://*|postgresql://*|postgres://*)
        PG_URL="postgresql://${DB_URL#*://}"
        FINAL="$OUT/relay-db-$TS.pgdump"
        # shellcheck disable=SC2086  # PG_DUMP may be a command with arguments
        $PG_DUMP --format=custom --no-owner --no-privileges --dbname="$PG_URL" > "$FINAL.part" \
            || die "pg_dump failed (is the server running? is PG_DUMP the server's version?)"
        [ -s "$FINAL.part" ] || die "pg_dump wrote nothing"
        finish "$FINAL.part" "$FINAL"
        ;;
    *) die "storage.url must be sqlite:///... or postgresql+psycopg://..." ;;
esac

# -- 2. the keys (and the root secret, if it lives outside the directory) ---------------
FINAL="$KEYS_OUT/relay-keys-$TS.tar"
"$PYTHON" - "$KEYS_DIR" "$ROOT_CRED" "$FINAL.part" <<'PY'
import os, sys, tarfile
keys_dir, root_cred, out = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(out, "w") as tar:
    tar.add(keys_dir, arcname="keys", recursive=False)
    for name in sorted(os.listdir(keys_dir)):
        path = os.path.join(keys_dir, name)
        if name.endswith(".tmp") or name == "keyring.lock":
            continue  # a writer's temp file; the lock file is recreated on use
        if os.path.islink(path) or not os.path.isfile(path):
            sys.exit(f"backup.sh: {path} is not a regular file; refusing to archive it")
        tar.add(path, arcname=f"keys/{name}")
    if root_cred:
        info = tar.gettarinfo(root_cred, arcname="relay-root")
        info.mode = 0o600
        with open(root_cred, "rb") as f:
            tar.addfile(info, f)
PY
finish "$FINAL.part" "$FINAL"

# -- 3. signal-cli's data directory ------------------------------------------------------
if [ -n "$SIGNAL_DIR" ]; then
    FINAL="$OUT/signal-cli-$TS.tar.gz"
    tar -C "$SIGNAL_DIR" -czf "$FINAL.part" .
    finish "$FINAL.part" "$FINAL"
fi

for f in "${WRITTEN[@]}"; do
    echo "wrote $f ($(wc -c < "$f") bytes)"
done
echo "keys archive: $KEYS_OUT/relay-keys-$TS.tar -- store it apart from the database" \
     "backup, encrypted, and delete it when your retention period says so"
