#!/bin/sh
# Creates the lakehouse buckets on the compose MinIO (run by the one-shot `minio-init`
# service; idempotent, safe to re-run: `docker compose … run --rm minio-init`).
#   raw                      object locking (write-once landing zone; implies versioning)
#   bronze silver gold
#   iceberg-metadata         versioning, non-current versions expire after
#                            ${MINIO_NONCURRENT_EXPIRE_DAYS:-30} days (files the lakehouse
#                            garbage collector deletes are kept that long, then go)
# Object locking can only be chosen when a bucket is created: an existing `raw` bucket
# without it stays as it is (recreate it, or copy it into a new locked bucket).
set -eu

alias_name=lake
mc alias set "$alias_name" "${MINIO_ENDPOINT:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

mc mb --ignore-existing --with-lock "$alias_name/raw"

for bucket in bronze silver gold iceberg-metadata; do
    mc mb --ignore-existing "$alias_name/$bucket"
    mc version enable "$alias_name/$bucket"
    if ! mc ilm rule ls --json "$alias_name/$bucket" 2>/dev/null | grep -q NoncurrentVersionExpiration; then
        mc ilm rule add --noncurrent-expire-days "${MINIO_NONCURRENT_EXPIRE_DAYS:-30}" "$alias_name/$bucket"
    fi
done
echo "minio-init: buckets ready: raw bronze silver gold iceberg-metadata"
