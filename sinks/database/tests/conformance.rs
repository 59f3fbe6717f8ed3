//! The SDK's sink conformance suite on every engine, against real storage: SQLite files, the
//! machine's PostgreSQL and its MariaDB (which must be reachable: these tests fail, not skip).

mod common;

use calpump_plugin::conformance::run_all;
use common::{DbHarness, Engine};
use serde_json::json;

#[test]
fn sqlite_conformance() {
    run_all("sqlite_conformance", || {
        DbHarness::new(Engine::Sqlite, json!({}))
    });
}

#[test]
fn sqlite_hard_delete_conformance() {
    run_all("sqlite_hard_delete_conformance", || {
        DbHarness::new(
            Engine::Sqlite,
            json!({ "delete": "hard", "table_prefix": "cp_" }),
        )
    });
}

#[test]
fn postgres_conformance() {
    run_all("postgres_conformance", || {
        DbHarness::new(
            Engine::Postgres,
            json!({ "schema": "calpump", "table_prefix": "cp_" }),
        )
    });
}

#[test]
fn mariadb_conformance() {
    run_all("mariadb_conformance", || {
        DbHarness::new(Engine::MariaDb, json!({ "table_prefix": "cp_" }))
    });
}
