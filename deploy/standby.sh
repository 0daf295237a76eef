#!/bin/sh
# A streaming hot standby of the local PostgreSQL on another port, from Debian's packages:
# what bench/standby.py measures reads against (docs/SCALING.md, step 3).
#
#   sudo sh deploy/standby.sh [PORT]        # default 5433; idempotent
#
# The primary is the cluster on 127.0.0.1:5432. It gets one pg_hba line allowing
# replication from 127.0.0.1 (trust, as the rest of this machine's local access), and a
# reload; wal_level=replica and max_wal_senders=10 are PostgreSQL's defaults. Point the API
# at it with LEDGER_READ_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:PORT/DB.
set -eu
PORT="${1:-5433}"
VERSION="$(ls /etc/postgresql | sort -n | tail -1)"
PRIMARY_HBA="/etc/postgresql/$VERSION/main/pg_hba.conf"
DATA="/var/lib/postgresql/$VERSION/standby"

if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$PRIMARY_HBA"; then
    echo "host replication all 127.0.0.1/32 trust" >> "$PRIMARY_HBA"
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload
fi

if pg_lsclusters -h | awk '{print $2}' | grep -qx standby; then
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" standby start 2>/dev/null || true
    echo "standby already exists on port $(pg_lsclusters -h | awk '$2=="standby"{print $3}')"
    exit 0
fi

pg_createcluster "$VERSION" standby -p "$PORT" >/dev/null
cp "$PRIMARY_HBA" "/etc/postgresql/$VERSION/standby/pg_hba.conf"  # the same local access as the primary
find "$DATA" -mindepth 1 -delete  # keep the directory postgres owns, replace what is in it
# -R writes standby.signal and primary_conninfo; -X stream copies the WAL made meanwhile
su postgres -c "pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D '$DATA' -R -X stream -c fast"
pg_ctlcluster --skip-systemctl-redirect "$VERSION" standby start
echo "standby streaming from 127.0.0.1:5432 on port $PORT"
