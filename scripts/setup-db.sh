#!/usr/bin/env bash
# Creates the TechEmpower benchmark tables in the PostgreSQL database named by DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test), idempotently: run it as often as you like.
#
#   bash scripts/setup-db.sh
#   DATABASE_URL=postgres://user:pass@host:5432/db bash scripts/setup-db.sh
#
# Tables (lowercase, unquoted names, as most TechEmpower Rust entries use; unquoted SQL such as
# `SELECT id, randomNumber FROM World` folds to these names too):
#
#   world(id integer primary key, randomnumber integer not null)    10,000 rows, ids 1..10000,
#                                                                    randomnumber random in 1..10000
#   fortune(id integer primary key, message varchar(2048) not null) the 12 reference fortunes
#
# The database itself is created first if it does not exist (through the `postgres` database
# on the same server). `world` is refilled only when it is not exactly ids 1..10000 with values
# in range, so the numbers survive re-runs; `fortune` is reloaded every time. The fortunes are
# embedded below (a copy of TechEmpower's fortunes.tsv: tab-separated, header line, UTF-8);
# FORTUNES_TSV=path loads another file of the same shape instead.
#
# Needs `psql`. Exits non-zero with a message when the server cannot be reached.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too

readonly DEFAULT_URL="postgres://postgres@127.0.0.1:5432/test"
URL=${DATABASE_URL:-$DEFAULT_URL}
readonly URL

if ! command -v psql >/dev/null; then
    echo "error: psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)" >&2
    exit 1
fi

export PGCLIENTENCODING=UTF8
psql_run() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The database named in the URL, created through the maintenance database when missing.
# Only the URL form is understood here; a key=value connection string must name an existing
# database.
url_re='^(postgres(ql)?://[^/?]*)(/([^?]*))?(\?.*)?$'
if [[ $URL =~ $url_re ]] && [[ -n ${BASH_REMATCH[4]} ]]; then
    dbname=${BASH_REMATCH[4]}
    admin_url="${BASH_REMATCH[1]}/postgres${BASH_REMATCH[5]}"
    # (Variables are interpolated in psql's input, not in -c.)
    if ! exists=$(psql_run -At -v db="$dbname" -d "$admin_url" 2>&1 <<<"SELECT 1 FROM pg_database WHERE datname = :'db'"); then
        echo "error: cannot reach PostgreSQL at $admin_url: $exists" >&2
        exit 1
    fi
    if [[ $exists != 1 ]]; then
        echo "creating database $dbname"
        psql_run -v db="$dbname" -d "$admin_url" <<'SQL'
CREATE DATABASE :"db" ENCODING 'UTF8' TEMPLATE template0;
SQL
    fi
fi

fortunes() {
    if [[ -n ${FORTUNES_TSV:-} ]]; then
        cat -- "$FORTUNES_TSV"
        return
    fi
    cat <<'TSV'
id	message
1	fortune: No such file or directory
2	A computer scientist is someone who fixes things that aren't broken.
3	After enough decimal places, nobody gives a damn.
4	A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1
5	A computer program does what you tell it to do, not what you want it to do.
6	Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen
7	Any program that runs right is obsolete.
8	A list is only as strong as its weakest link. — Donald Knuth
9	Feature: A bug with seniority.
10	Computers make very fast, very accurate mistakes.
11	<script>alert("This should not be displayed in a browser alert box.");</script>
12	フレームワークのベンチマーク
TSV
}

# One transaction: a failure leaves the tables as they were. The fortunes arrive on psql's
# stdin (pstdin) as CSV with a tab delimiter and a quote character that never occurs, so
# quotes, '<script>' and backslashes in messages load verbatim.
fortunes | psql_run --single-transaction -d "$URL" -f <(
    cat <<'SQL'
SET client_min_messages = warning; -- not "relation already exists, skipping"
CREATE TABLE IF NOT EXISTS world (
    id integer PRIMARY KEY,
    randomnumber integer NOT NULL
);
CREATE TABLE IF NOT EXISTS fortune (
    id integer PRIMARY KEY,
    message varchar(2048) NOT NULL
);
LOCK TABLE world, fortune IN EXCLUSIVE MODE;

DO $$
BEGIN
    IF (SELECT count(*) <> 10000
               OR coalesce(min(id), 0) <> 1 OR coalesce(max(id), 0) <> 10000
               OR coalesce(min(randomnumber), 0) < 1 OR coalesce(max(randomnumber), 0) > 10000
        FROM world)
    THEN
        TRUNCATE world;
        INSERT INTO world (id, randomnumber)
        SELECT i, 1 + floor(random() * 10000)::integer FROM generate_series(1, 10000) AS i;
    END IF;
END
$$;

CREATE TEMP TABLE fortune_load (id integer, message text) ON COMMIT DROP;
\copy fortune_load FROM pstdin WITH (FORMAT csv, HEADER true, DELIMITER E'\t', QUOTE E'\x01')
TRUNCATE fortune;
INSERT INTO fortune (id, message) SELECT id, message FROM fortune_load;

ANALYZE world;
ANALYZE fortune;
SQL
)

read -r worlds fortune_count < <(psql_run -At -F ' ' -d "$URL" \
    -c "SELECT (SELECT count(*) FROM world), (SELECT count(*) FROM fortune)")
echo "database ready: world $worlds rows, fortune $fortune_count rows ($URL)"
