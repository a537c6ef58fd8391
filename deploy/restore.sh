#!/usr/bin/env bash
# Restore what backup.sh wrote: the database, the keys, and (optionally) signal-cli's data.
#
# Stop relay (and signal-cli-rest-api, if you restore its data) first. restore.sh refuses
# to touch existing data unless you pass --force; with --force it moves an existing SQLite
# file, keys directory or signal-cli directory aside (<name>.replaced-<UTC>) and, on
# PostgreSQL, drops the objects the dump recreates. It stops at the first error, then
# checks the result with `relay keys verify` (every sealed field opens with these keys)
# and `relay audit verify` (the audit chain is intact). Finish with `relay doctor`.
#
# Environment: PYTHON (default python3), RELAY (default relay; e.g.
# /opt/relay/.venv/bin/relay), PG_RESTORE and PSQL (default pg_restore, psql; e.g.
# "docker compose -f deploy/compose.yaml exec -T postgres pg_restore").
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=config-paths.sh
. "$(dirname "$0")/config-paths.sh"
umask 077

usage() {
    cat <<'EOF'
usage: restore.sh -c CONFIG [--db FILE] [--keys FILE] [--root-credential-to FILE]
                  [--signal-cli FILE --signal-cli-dir DIR] [--db-url URL] [--keys-dir DIR]
                  [--owner USER[:GROUP]] [--force] [--no-verify]

  -c, --config FILE          relay.toml of the installation to restore into
  --db FILE                  relay-db-<UTC>.sqlite or .pgdump from backup.sh
  --keys FILE                relay-keys-<UTC>.tar from backup.sh
  --root-credential-to FILE  where to put the root secret from the keys archive
                             (keys.source = "credentials"), e.g. deploy/secrets/relay-root;
                             for systemd, encrypt it afterwards with systemd-creds
  --signal-cli FILE          signal-cli-<UTC>.tar.gz from backup.sh ...
  --signal-cli-dir DIR       ... and the directory to restore it into
  --db-url URL, --keys-dir DIR   override storage.url / keys.directory (host paths)
  --owner USER[:GROUP]       chown what is restored (relay's user, e.g. relay or 10001:10001)
  --force                    replace existing data (moved aside, or dropped on PostgreSQL)
  --no-verify                skip `relay keys verify` and `relay audit verify`
EOF
}

STEP="starting"
trap 'echo "restore.sh: stopped: $STEP failed; nothing after it was done" >&2' ERR

die() {
    echo "restore.sh: $*" >&2
    exit 1
}

CONFIG="" DB_FILE="" KEYS_FILE="" ROOT_TO="" SIG_FILE="" SIG_DIR="" DB_URL="" KEYS_DIR=""
OWNER="" FORCE=0 VERIFY=1
while [ $# -gt 0 ]; do
    case "$1" in
        -c|--config) CONFIG="${2:?}"; shift 2 ;;
        --db) DB_FILE="${2:?}"; shift 2 ;;
        --keys) KEYS_FILE="${2:?}"; shift 2 ;;
        --root-credential-to) ROOT_TO="${2:?}"; shift 2 ;;
        --signal-cli) SIG_FILE="${2:?}"; shift 2 ;;
        --signal-cli-dir) SIG_DIR="${2:?}"; shift 2 ;;
        --db-url) DB_URL="${2:?}"; shift 2 ;;
        --keys-dir) KEYS_DIR="${2:?}"; shift 2 ;;
        --owner) OWNER="${2:?}"; shift 2 ;;
        --force) FORCE=1; shift ;;
        --no-verify) VERIFY=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

PYTHON="${PYTHON:-python3}"
RELAY="${RELAY:-relay}"
PG_RESTORE="${PG_RESTORE:-pg_restore}"
PSQL="${PSQL:-psql}"
TS="$(date -u +%Y%m%dT%H%M%SZ)"

[ -n "$DB_FILE$KEYS_FILE$SIG_FILE" ] || { usage >&2; die "nothing to restore"; }
[ -z "$SIG_FILE" ] || [ -n "$SIG_DIR" ] || die "--signal-cli needs --signal-cli-dir DIR"

STEP="reading the config"
apply_config
[ -z "$DB_FILE" ] || [ -n "$DB_URL" ] || die "--db needs -c CONFIG or --db-url URL"
[ -z "$KEYS_FILE" ] || [ -n "$KEYS_DIR" ] || die "--keys needs -c CONFIG or --keys-dir DIR"

STEP="checking the archives"
for f in "$DB_FILE" "$KEYS_FILE" "$SIG_FILE"; do
    [ -n "$f" ] || continue
    [ -r "$f" ] || die "cannot read $f"
    if [ -r "$f.sha256" ]; then
        (cd "$(dirname "$f")" && sha256sum --check --quiet "$(basename "$f").sha256") \
            || die "$f does not match $f.sha256: damaged or altered"
    else
        echo "restore.sh: warning: no $f.sha256 to check $f against" >&2
    fi
done

nonempty_dir() { [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; }

move_aside() {  # only with --force; never deletes
    local path="$1"
    [ "$FORCE" -eq 1 ] || die "$path already exists; refusing to overwrite it (--force moves it aside)"
    mv "$path" "$path.replaced-$TS"
    echo "moved the existing $path to $path.replaced-$TS"
}

# -- checks first: refuse before changing anything ---------------------------------------
STEP="checking the targets"
if [ -n "$DB_FILE" ]; then
    case "$DB_URL" in
        sqlite:///*)
            case "$DB_FILE" in *.sqlite) ;; *) die "$DB_FILE is not a SQLite backup (.sqlite) but storage.url is SQLite" ;; esac
            DB_PATH="${DB_URL#sqlite:///}"
            if [ "$FORCE" -eq 0 ] && { [ -e "$DB_PATH" ] || [ -e "$DB_PATH-wal" ]; }; then
                die "database $DB_PATH already exists; refusing to overwrite it (--force moves it aside)"
            fi
            ;;
        postgresql+psycopg://*|postgresql://*|postgres://*)
            case "$DB_FILE" in *.pgdump) ;; *) die "$DB_FILE is not a PostgreSQL backup (.pgdump) but storage.url is PostgreSQL" ;; esac
            PG_URL="postgresql://${DB_URL#*://}"
            # shellcheck disable=SC2086  # PSQL may be a command with arguments
            TABLES="$($PSQL --no-psqlrc --quiet --tuples-only --no-align --dbname="$PG_URL" \
                --command="select count(*) from information_schema.tables where table_schema = current_schema()")" \
                || die "cannot connect to the database at storage.url (is the server running?)"
            if [ "$TABLES" != "0" ] && [ "$FORCE" -eq 0 ]; then
                die "the database at storage.url already has $TABLES table(s); refusing to" \
                    "overwrite it (--force drops and recreates relay's tables)"
            fi
            ;;
        *) die "storage.url must be sqlite:///... or postgresql+psycopg://..." ;;
    esac
fi
if [ -n "$KEYS_FILE" ] && [ "$FORCE" -eq 0 ] && nonempty_dir "$KEYS_DIR"; then
    die "keys directory $KEYS_DIR is not empty; refusing to overwrite it (--force moves it aside)"
fi
if [ -n "$ROOT_TO" ] && [ "$FORCE" -eq 0 ] && [ -e "$ROOT_TO" ]; then
    die "$ROOT_TO already exists; refusing to overwrite it (--force moves it aside)"
fi
if [ -n "$SIG_FILE" ] && [ "$FORCE" -eq 0 ] && nonempty_dir "$SIG_DIR"; then
    die "signal-cli directory $SIG_DIR is not empty; refusing to overwrite it (--force moves it aside)"
fi

# -- the keys ------------------------------------------------------------------------------
if [ -n "$KEYS_FILE" ]; then
    STEP="restoring the keys"
    if [ -e "$KEYS_DIR" ] && nonempty_dir "$KEYS_DIR"; then move_aside "$KEYS_DIR"; fi
    [ -z "$ROOT_TO" ] || [ ! -e "$ROOT_TO" ] || move_aside "$ROOT_TO"
    "$PYTHON" - "$KEYS_FILE" "$KEYS_DIR" "$ROOT_TO" "$SOURCE" <<'PY'
import os, sys, tarfile
archive, keys_dir, root_to, source = sys.argv[1:5]
with tarfile.open(archive, "r") as tar:
    members = tar.getmembers()
    files = {}
    for m in members:
        name = m.name
        if name == "keys" and m.isdir():
            continue
        ok_name = (name == "relay-root" or (name.startswith("keys/") and "/" not in name[5:]
                   and name[5:] not in ("", ".", "..")))
        if not ok_name or not m.isfile():
            sys.exit(f"restore.sh: unexpected entry {name!r} in {archive}: not a relay keys archive")
        files[name] = tar.extractfile(m).read()
if not any(n.startswith("keys/") for n in files):
    sys.exit(f"restore.sh: {archive} holds no keys")
root = files.get("relay-root")
if root_to and root is None:
    sys.exit(f"restore.sh: {archive} holds no root secret for --root-credential-to")
os.makedirs(keys_dir, mode=0o700, exist_ok=True)
os.chmod(keys_dir, 0o700)
for name, data in files.items():
    if name == "relay-root":
        continue
    path = os.path.join(keys_dir, name[5:])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
if root is not None and root_to:
    fd = os.open(root_to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(root)
        os.fsync(f.fileno())
elif root is not None:
    print("restore.sh: note: the archive holds the root secret (relay-root); pass "
          "--root-credential-to FILE to write it out", file=sys.stderr)
elif source == "credentials":
    print("restore.sh: note: keys.source is 'credentials' and this archive has no root "
          "secret: restore it from where you keep it", file=sys.stderr)
PY
    if [ -n "$OWNER" ]; then
        chown -R "$OWNER" "$KEYS_DIR"
        [ -z "$ROOT_TO" ] || chown "$OWNER" "$ROOT_TO"
    fi
    echo "restored the keys into $KEYS_DIR"
fi

# -- the database ----------------------------------------------------------------------------
if [ -n "$DB_FILE" ]; then
    STEP="restoring the database"
    case "$DB_URL" in
        sqlite:///*)
            for p in "$DB_PATH" "$DB_PATH-wal" "$DB_PATH-shm" "$DB_PATH-journal"; do
                [ ! -e "$p" ] || move_aside "$p"
            done
            mkdir -p "$(dirname "$DB_PATH")"
            "$PYTHON" - "$DB_FILE" "$DB_PATH.restoring" <<'PY'
import sqlite3, sys
from urllib.parse import quote
src = sqlite3.connect("file:" + quote(sys.argv[1]) + "?mode=ro", uri=True)
if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
    sys.exit("restore.sh: the backup fails PRAGMA integrity_check")
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()
PY
            mv "$DB_PATH.restoring" "$DB_PATH"
            if [ -n "$OWNER" ]; then chown "$OWNER" "$DB_PATH"; fi
            ;;
        *)
            CLEAN=()
            [ "$FORCE" -eq 0 ] || CLEAN=(--clean --if-exists)
            # One transaction: an error leaves the database as it was.
            # shellcheck disable=SC2086  # PG_RESTORE may be a command with arguments
            $PG_RESTORE --exit-on-error --single-transaction --no-owner --no-privileges \
                "${CLEAN[@]}" --dbname="$PG_URL" < "$DB_FILE"
            ;;
    esac
    echo "restored the database from $DB_FILE"
fi

# -- signal-cli's data ---------------------------------------------------------------------
if [ -n "$SIG_FILE" ]; then
    STEP="restoring signal-cli's data"
    if nonempty_dir "$SIG_DIR"; then move_aside "$SIG_DIR"; fi
    mkdir -p "$SIG_DIR"
    chmod 0700 "$SIG_DIR"
    tar -C "$SIG_DIR" --no-same-owner -xzf "$SIG_FILE"
    echo "restored signal-cli's data into $SIG_DIR (signal-cli-rest-api chowns it at start)"
fi

# -- checks ------------------------------------------------------------------------------------
if [ "$VERIFY" -eq 1 ] && [ -n "$CONFIG" ] && [ -n "$DB_FILE$KEYS_FILE" ]; then
    STEP="checking the restore"
    command -v "${RELAY%% *}" >/dev/null \
        || die "relay not found to check the restore; set RELAY=/opt/relay/.venv/bin/relay" \
               "(or pass --no-verify and run relay keys verify / audit verify yourself)"
    if [ "$SOURCE" = "credentials" ] && [ -z "${CREDENTIALS_DIRECTORY:-}" ] \
            && [ -n "$ROOT_TO" ] && [ "$(basename "$ROOT_TO")" = "relay-root" ]; then
        CREDENTIALS_DIRECTORY="$(cd "$(dirname "$ROOT_TO")" && pwd)"
        export CREDENTIALS_DIRECTORY
    fi
    if [ "$SOURCE" = "credentials" ] && [ -z "${CREDENTIALS_DIRECTORY:-}" ]; then
        die "keys.source is 'credentials' but \$CREDENTIALS_DIRECTORY is not set: run the" \
            "checks yourself (relay keys verify, relay audit verify) with the credential loaded"
    fi
    # shellcheck disable=SC2086  # RELAY may be a command with arguments
    $RELAY keys verify -c "$CONFIG" \
        || die "relay keys verify failed: these keys do not open this database (see above)"
    # shellcheck disable=SC2086
    $RELAY audit verify -c "$CONFIG"
fi
echo "done. Next: relay doctor -c ${CONFIG:-relay.toml}, then start relay."
