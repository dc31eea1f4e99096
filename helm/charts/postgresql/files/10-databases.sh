#!/bin/bash
# First start of the compose PostgreSQL only (docker-entrypoint-initdb.d): one role and
# one database each for the lakehouse catalog, Nessie and Airflow. Passwords come from
# the container's environment (docker compose fills it from the env file); psql variables
# (:'var') quote them, so no password is interpolated into SQL text.
set -euo pipefail

create() {
    local name="$1" password="$2"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
}

create lakehouse "$LAKEHOUSE_DB_PASSWORD"
create nessie "$NESSIE_DB_PASSWORD"
create airflow "$AIRFLOW_DB_PASSWORD"
