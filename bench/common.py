"""What the benchmarks share: a throwaway Postgres database, command-line parsing."""

from __future__ import annotations

import argparse
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg import sql

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(admin_url: str, dbname: str) -> str:
    """The admin URL pointed at `dbname`, with sslmode=disable."""
    parts = urlsplit(admin_url)
    query = dict(parse_qsl(parts.query))
    query["sslmode"] = "disable"
    return parts._replace(path=f"/{dbname}", query=urlencode(query)).geturl()


def create_database(admin_url: str, prefix: str) -> str:
    dbname = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return dbname


def drop_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def concurrency_list(text: str) -> list[int]:
    """--concurrency: a comma-separated list of positive integers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {text!r}")
    return values
