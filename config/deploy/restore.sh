#!/bin/sh
# Restore a backup made by backup.sh into an EMPTY database and data directory, with the hub stopped:
#   systemctl stop hub.target && restore.sh /var/backups/hub/20261128T020000Z && systemctl start hub.target
set -eu
SRC="${1:?usage: restore.sh BACKUP_DIR}"
# Exported (set -a): `hub migrate` below must see the same settings, not its defaults.
set -a
. "${HUB_ENV_FILE:-/etc/hub/hub.env}"
set +a
pg_restore --no-owner --exit-on-error --dbname="$HUB_DATABASE_URL" "$SRC/hub.dump"
mkdir -p "$HUB_DATA_DIR"
tar -C "$HUB_DATA_DIR" -xzf "$SRC/data.tar.gz"
# Migrations are forward-only and idempotent: a backup from an older release is upgraded here.
"${HUB_BIN:-/opt/hub/.venv/bin/hub}" migrate
echo "restored from $SRC"
