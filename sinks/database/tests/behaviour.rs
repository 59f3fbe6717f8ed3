//! What the sink does beyond the conformance suite, on the real engines: migrations recorded
//! and guarded, errors classified (retryable / config / fatal) without leaking passwords, the
//! bookkeeping tables, the PostgreSQL schema, and the README's room query.

mod common;

use calpump_plugin::conformance::generate::{EventGen, base_time, delta, snapshot, window};
use calpump_plugin::{Sink, SinkErrorKind};
use calpump_sink_database::{DatabaseSink, latest_version};
use chrono::Duration;
use common::{DbHarness, Engine, mysql_admin_url, pg_admin_url, replace_path};
use serde_json::json;

fn create_err(config: serde_json::Value) -> calpump_plugin::SinkError {
    match DatabaseSink::create(config) {
        Ok(_) => panic!("create should fail"),
        Err(e) => e,
    }
}

fn migrations(engine: Engine, extra: serde_json::Value, table: &str) {
    let h = DbHarness::new(engine, extra);
    assert_eq!(
        h.query_i64(&format!("SELECT COUNT(*) FROM {table}")),
        1,
        "{engine:?}: one migration recorded"
    );
    // A second start applies nothing and records nothing.
    let second = DatabaseSink::create(h.config.clone()).expect("second start");
    assert_eq!(second.schema_version(), latest_version(second.dialect()));
    drop(second);
    assert_eq!(h.query_i64(&format!("SELECT COUNT(*) FROM {table}")), 1);
    assert_eq!(h.query_i64(&format!("SELECT MAX(version) FROM {table}")), 1);

    // An edited migration is refused.
    h.execute(&format!("UPDATE {table} SET checksum = 'edited'"));
    let e = create_err(h.config.clone());
    assert_eq!(e.kind, SinkErrorKind::Fatal, "{engine:?}: {e}");
    assert!(e.message.contains("changed after it was applied"), "{e}");

    // A database from a newer calpump is refused.
    h.execute(&format!("DELETE FROM {table}"));
    let now = match engine {
        Engine::Sqlite => "'2026-01-01T00:00:00+00:00'",
        Engine::Postgres => "now()",
        Engine::MariaDb => "NOW(6)",
    };
    h.execute(&format!(
        "INSERT INTO {table} (version, description, checksum, applied_at) VALUES (99, 'future', 'x', {now})"
    ));
    let e = create_err(h.config.clone());
    assert_eq!(e.kind, SinkErrorKind::Fatal, "{engine:?}: {e}");
    assert!(e.message.contains("newer"), "{e}");
}

#[test]
fn migrations_are_recorded_once_and_guarded_sqlite() {
    migrations(Engine::Sqlite, json!({}), "schema_migrations");
}

#[test]
fn migrations_are_recorded_once_and_guarded_postgres() {
    migrations(
        Engine::Postgres,
        json!({ "schema": "cal", "table_prefix": "p_" }),
        "cal.p_schema_migrations",
    );
}

#[test]
fn migrations_are_recorded_once_and_guarded_mariadb() {
    migrations(
        Engine::MariaDb,
        json!({ "table_prefix": "p_" }),
        "p_schema_migrations",
    );
}

#[test]
fn postgres_schema_and_prefix_hold_every_table() {
    let h = DbHarness::new(
        Engine::Postgres,
        json!({ "schema": "calpump", "table_prefix": "cp_" }),
    );
    assert_eq!(
        h.query_i64(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'calpump' \
             AND table_name IN ('cp_events', 'cp_mailboxes', 'cp_runs', 'cp_schema_migrations')"
        ),
        4
    );
    assert_eq!(
        h.query_i64("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"),
        0,
        "nothing lands in the default schema"
    );
}

#[test]
fn unreachable_servers_are_retryable() {
    for url in [
        "postgres://postgres@127.0.0.1:1/calpump",
        "mysql://root@127.0.0.1:1/calpump",
    ] {
        let e = create_err(json!({ "url": url, "connect_timeout_secs": 2 }));
        assert_eq!(e.kind, SinkErrorKind::Retryable, "{url}: {e}");
        assert!(e.message.contains("cannot connect"), "{e}");
    }
}

#[test]
fn unknown_database_and_wrong_password_are_config_errors_without_the_password() {
    let e = create_err(json!({ "url": replace_path(&pg_admin_url(), "calpump_no_such_db") }));
    assert_eq!(e.kind, SinkErrorKind::Config, "{e}");
    let e = create_err(json!({ "url": replace_path(&mysql_admin_url(), "calpump_no_such_db") }));
    assert_eq!(e.kind, SinkErrorKind::Config, "{e}");

    let mut url = url::Url::parse(&mysql_admin_url()).expect("url");
    url.set_password(Some("Wr0ngSecret")).expect("password");
    let e = create_err(json!({ "url": url.to_string() }));
    assert_eq!(e.kind, SinkErrorKind::Config, "{e}");
    assert!(
        !e.message.contains("Wr0ngSecret"),
        "the password leaked: {e}"
    );
    assert!(e.message.contains("***"), "{e}");
    let e = create_err(json!({ "url": mysql_admin_url(), "password": "An0therSecret" }));
    assert_eq!(e.kind, SinkErrorKind::Config, "{e}");
    assert!(
        !e.message.contains("An0therSecret"),
        "the password leaked: {e}"
    );
}

#[test]
fn a_dropped_server_connection_heals() {
    let h = DbHarness::new(Engine::Postgres, json!({}));
    let sink = DatabaseSink::create(h.config.clone()).expect("create");
    let mut g = EventGen::new(3);
    let w = window(base_time(), 7);
    let mb = "room-heal@contoso.test";
    let b = snapshot(
        "r",
        mb,
        "default",
        w,
        g.events(mb, "default", &w, 10),
        true,
        "1",
    );
    sink.write_batch(b).expect("first write");
    // The server drops every connection of the sink (a restart, a failover).
    let db = url::Url::parse(h.config["url"].as_str().expect("url"))
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_string();
    h.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ));
    let b = snapshot(
        "r",
        mb,
        "default",
        w,
        g.events(mb, "default", &w, 10),
        true,
        "2",
    );
    let result = sink.write_batch(b).expect("the pool reconnects");
    assert_eq!(result.accepted.len(), 10);
    sink.flush().expect("flush pings a live connection");
}

fn bookkeeping(engine: Engine) {
    let h = DbHarness::new(engine, json!({}));
    let sink = DatabaseSink::create(h.config.clone()).expect("create");
    let mut g = EventGen::new(8);
    let w = window(base_time(), 7);
    let mb = "room-books@contoso.test";
    let events = g.events(mb, "default", &w, 12);
    sink.write_batch(snapshot(
        "rooms",
        mb,
        "default",
        w,
        events.clone(),
        true,
        "run-a",
    ))
    .expect("snapshot");
    let changed = vec![g.modify(&events[0])];
    sink.write_batch(delta(
        "rooms",
        mb,
        "default",
        w,
        changed,
        vec![events[1].key().clone(), events[2].key().clone()],
        "run-b",
    ))
    .expect("delta");
    sink.write_batch(snapshot(
        "rooms",
        mb,
        "default",
        w,
        events[3..].to_vec(),
        true,
        "run-b",
    ))
    .expect("replay-ish snapshot");

    let q = |sql: &str| h.query_i64(sql);
    assert_eq!(q("SELECT COUNT(*) FROM mailboxes"), 1);
    // events[0] (changed, then absent from the last snapshot) is gone too: 12 - 3 live.
    assert_eq!(
        q("SELECT event_count FROM mailboxes WHERE mailbox = 'room-books@contoso.test'"),
        9
    );
    assert_eq!(q("SELECT deleted_count FROM mailboxes"), 3);
    assert_eq!(
        q("SELECT COUNT(*) FROM mailboxes WHERE display_name = 'Room room-books@contoso.test'"),
        1,
        "the display name of a snapshot is kept when a delta has none"
    );
    assert_eq!(q("SELECT COUNT(*) FROM runs"), 2);
    assert_eq!(q("SELECT batches FROM runs WHERE run_id = 'run-a'"), 1);
    assert_eq!(q("SELECT upserted FROM runs WHERE run_id = 'run-a'"), 12);
    assert_eq!(q("SELECT batches FROM runs WHERE run_id = 'run-b'"), 2);
    assert_eq!(q("SELECT upserted FROM runs WHERE run_id = 'run-b'"), 1);
    assert_eq!(q("SELECT deleted FROM runs WHERE run_id = 'run-b'"), 3);
    assert_eq!(q("SELECT unchanged FROM runs WHERE run_id = 'run-b'"), 9);
    // Soft-deleted rows keep their data and say when and in which run they went.
    assert_eq!(
        q("SELECT COUNT(*) FROM events WHERE deleted_at IS NOT NULL AND run_id = 'run-b'"),
        3
    );
    // Unchanged rows still carry the run that last changed them.
    assert_eq!(q("SELECT COUNT(*) FROM events WHERE run_id = 'run-a'"), 9);
}

#[test]
fn mailboxes_and_runs_are_kept_sqlite() {
    bookkeeping(Engine::Sqlite);
}

#[test]
fn mailboxes_and_runs_are_kept_postgres() {
    bookkeeping(Engine::Postgres);
}

#[test]
fn mailboxes_and_runs_are_kept_mariadb() {
    bookkeeping(Engine::MariaDb);
}

/// The query the README shows, per engine: what is in room X between A and B.
fn readme_query(engine: Engine) {
    let h = DbHarness::new(engine, json!({}));
    let sink = DatabaseSink::create(h.config.clone()).expect("create");
    let mut g = EventGen::new(21);
    let mb = "room-1.01@contoso.com";
    let day = base_time() + Duration::days(1);
    let w = window(base_time(), 7);
    let mut events = vec![
        g.event_at(mb, "default", day + Duration::hours(7), 60), // 07–08: before
        g.event_at(
            mb,
            "default",
            day + Duration::hours(7) + Duration::minutes(30),
            60,
        ), // overlaps 08:00
        g.event_at(mb, "default", day + Duration::hours(12), 30), // inside
        g.event_at(mb, "default", day + Duration::hours(18), 60), // starts at 18:00: after
        g.event_at(mb, "default", day + Duration::hours(17), 120), // overlaps 18:00
    ];
    let deleted = g.event_at(mb, "default", day + Duration::hours(10), 60);
    events.push(deleted.clone());
    sink.write_batch(snapshot("rooms", mb, "default", w, events, true, "1"))
        .expect("write");
    sink.write_batch(delta(
        "rooms",
        mb,
        "default",
        w,
        vec![],
        vec![deleted.key().clone()],
        "2",
    ))
    .expect("delete");
    let (a, b) = match engine {
        Engine::Sqlite => ("2026-12-01T08:00:00+00:00", "2026-12-01T18:00:00+00:00"),
        Engine::Postgres => ("2026-12-01T08:00:00Z", "2026-12-01T18:00:00Z"),
        Engine::MariaDb => ("2026-12-01 08:00:00", "2026-12-01 18:00:00"),
    };
    let sql = format!(
        "SELECT COUNT(*) FROM events
         WHERE mailbox = 'room-1.01@contoso.com'
           AND deleted_at IS NULL
           AND start_utc < '{b}'
           AND end_utc   > '{a}'"
    );
    assert_eq!(h.query_i64(&sql), 3, "{engine:?}: {sql}");
}

#[test]
fn readme_room_query_sqlite() {
    readme_query(Engine::Sqlite);
}

#[test]
fn readme_room_query_postgres() {
    readme_query(Engine::Postgres);
}

#[test]
fn readme_room_query_mariadb() {
    readme_query(Engine::MariaDb);
}

/// sqlx 0.9.0 no longer sets TCP_NODELAY (sqlx#4335); the sink does, or every multi-row
/// statement waits ~40 ms for a delayed ACK (see `src/nodelay.rs`).
#[test]
fn server_connections_have_tcp_nodelay() {
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let h = DbHarness::new(engine, json!({}));
        let sink = DatabaseSink::create(h.config.clone()).expect("create");
        sink.flush().expect("a live connection");
        let url = url::Url::parse(h.config["url"].as_str().expect("url")).expect("url");
        let db = url.path().trim_start_matches('/').to_string();
        let server_port = url.port().expect("port");
        let ports = match engine {
            Engine::Postgres => h.query_strings(&format!(
                "SELECT client_port::text FROM pg_stat_activity WHERE datname = '{db}' \
                 AND application_name = 'calpump-sink-database' AND client_port IS NOT NULL"
            )),
            _ => h
                .query_strings(&format!(
                    "SELECT HOST FROM information_schema.PROCESSLIST WHERE DB = '{db}' \
                     AND ID <> CONNECTION_ID()"
                ))
                .into_iter()
                .filter_map(|host| host.rsplit_once(':').map(|(_, p)| p.to_string()))
                .collect(),
        };
        assert!(!ports.is_empty(), "{engine:?}: no sink connections seen");
        for port in ports {
            let port: u16 = port.parse().expect("port");
            assert_eq!(
                calpump_sink_database::tcp_nodelay_is_set(port, server_port),
                Some(true),
                "{engine:?}: connection from port {port}"
            );
        }
    }
}
