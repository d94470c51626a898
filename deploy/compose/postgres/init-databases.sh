#!/bin/bash
# PostgreSQL init script (runs once, on an empty data directory): one role and one
# database per service, each role owning only its own database. Passwords come from
# <SERVICE>_DB_PASSWORD in the container's environment (deploy/compose/.env).
set -euo pipefail

for service in case contact complaint qa; do
  var="${service^^}_DB_PASSWORD"
  password="${!var:?$var is not set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="${service}_svc" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
