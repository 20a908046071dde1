#!/bin/sh
# Nightly backup of the hub: the PostgreSQL database (custom format, restorable table by table)
# and the data directory (stored attachments, the secret key file if HUB_SECRET_KEY is unset).
# Run from cron or a systemd timer as the hub user:  backup.sh /var/backups/hub
set -eu
DEST="${1:?usage: backup.sh DEST_DIR}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
# Exported (set -a): `hub migrate` below must see the same settings, not its defaults.
set -a
. "${HUB_ENV_FILE:-/etc/hub/hub.env}"
set +a
mkdir -p "$DEST/$STAMP"
pg_dump --format=custom --no-owner --dbname="$HUB_DATABASE_URL" --file="$DEST/$STAMP/hub.dump"
tar -C "$HUB_DATA_DIR" -czf "$DEST/$STAMP/data.tar.gz" .
# Keep 14 days.
find "$DEST" -mindepth 1 -maxdepth 1 -type d -mtime +14 -exec rm -rf {} +
echo "backup written to $DEST/$STAMP"
