//! Shared test support: fresh databases on the machine's real servers, and the conformance
//! harness for the database sink (linked in, or loaded from its `.so`).
//!
//! The servers: PostgreSQL at `CALPUMP_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and MariaDB/MySQL at `CALPUMP_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/`). A test that cannot reach one FAILS.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use calpump_plugin::Sink;
use calpump_plugin::abi::{SINK_ENTRY_SYMBOL, SinkEntryFn, SinkPluginV1};
use calpump_plugin::conformance::{Contents, Harness, Hold, SinkHandle, Stored, TableSink};
use calpump_plugin::{EventKey, SinkError};
use calpump_sink_database::{DatabaseSink, StoredRow};
use serde_json::{Value, json};
use sqlx::Connection as _;

pub fn pg_admin_url() -> String {
    std::env::var("CALPUMP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var("CALPUMP_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "calpump_test_{kind}_{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// Which engine a test database lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    MariaDb,
}

/// A fresh, empty database (a file, or a database on a server), dropped with this value.
pub struct FreshDb {
    pub engine: Engine,
    /// The sink's `url`.
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl FreshDb {
    pub fn new(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("calpump.db").display());
                Self {
                    engine,
                    url,
                    name: String::new(),
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                let name = unique_name("pg");
                let admin = pg_admin_url();
                runtime().block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                        panic!("PostgreSQL is not reachable at {admin}: {e} (these tests need the real server)")
                    });
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut conn)
                        .await
                        .expect("CREATE DATABASE");
                });
                let url = replace_path(&admin, &name);
                Self {
                    engine,
                    url,
                    name,
                    _dir: None,
                }
            }
            Engine::MariaDb => {
                let name = unique_name("my");
                let admin = mysql_admin_url();
                runtime().block_on(async {
                    let mut conn = sqlx::MySqlConnection::connect(&admin).await.unwrap_or_else(|e| {
                        panic!("MariaDB/MySQL is not reachable at {admin}: {e} (these tests need the real server)")
                    });
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
                });
                let url = replace_path(&admin, &name);
                Self {
                    engine,
                    url,
                    name,
                    _dir: None,
                }
            }
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let sql = match self.engine {
            Engine::Sqlite => return,
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Engine::MariaDb => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let engine = self.engine;
        runtime().block_on(async move {
            let _ = match engine {
                Engine::Postgres => match sqlx::PgConnection::connect(&pg_admin_url()).await {
                    Ok(mut c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
                Engine::MariaDb => match sqlx::MySqlConnection::connect(&mysql_admin_url()).await {
                    Ok(mut c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
                Engine::Sqlite => Ok(()),
            };
        });
    }
}

/// `url` with its path (database name) replaced.
pub fn replace_path(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a server URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// How the harness reads what the sink stored.
enum Reader {
    /// A linked instance of the sink in this process.
    Linked(DatabaseSink),
    /// A helper process (this test binary re-run): for SQLite when the sink under test is the
    /// loaded `.so`, which carries its own copy of SQLite. Two copies of SQLite in one process
    /// must never open the same file — their POSIX locks and WAL index would trample each other
    /// (<https://www.sqlite.org/howtocorrupt.html>, 2.2.1) — while other processes may.
    Process,
}

/// The conformance harness over one fresh database.
pub struct DbHarness {
    pub config: Value,
    /// Loaded `.so` to open instances from (through the C ABI) instead of linking.
    pub plugin: Option<String>,
    reader: Reader,
    // Dropped last: the database outlives every instance above.
    pub db: FreshDb,
}

impl DbHarness {
    /// `extra` is merged into the sink's config (e.g. `table_prefix`, `schema`, `delete`).
    pub fn new(engine: Engine, extra: Value) -> Self {
        let db = FreshDb::new(engine);
        let mut config = json!({ "url": db.url });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        let reader = Reader::Linked(
            DatabaseSink::create(config.clone()).expect("the sink starts on a fresh database"),
        );
        Self {
            config,
            plugin: None,
            reader,
            db,
        }
    }

    /// A harness whose sink instances are the loaded plugin at `path`, on a fresh database.
    pub fn for_plugin(engine: Engine, extra: Value, path: String) -> Self {
        let mut h = Self::new(engine, extra);
        if engine == Engine::Sqlite {
            // Close the linked copy of SQLite's connections before the plugin's copy opens the
            // file; read through a helper process from now on.
            h.reader = Reader::Process;
        }
        h.plugin = Some(path);
        h
    }

    pub fn try_rows(
        &self,
        route: &str,
        mailbox: &str,
        calendar: Option<&str>,
    ) -> Result<Vec<StoredRow>, String> {
        match &self.reader {
            Reader::Linked(sink) => sink
                .read_rows(route, mailbox, calendar)
                .map_err(|e| e.to_string()),
            Reader::Process => {
                let spec = json!({
                    "mode": "read", "config": self.config,
                    "route": route, "mailbox": mailbox, "calendar": calendar,
                });
                let out = helper(&spec)
                    .stdout(std::process::Stdio::piped())
                    .output()
                    .map_err(|e| format!("read helper: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let json = text
                    .lines()
                    .find_map(|l| l.find(HELPER_JSON).map(|at| &l[at + HELPER_JSON.len()..]))
                    .ok_or_else(|| format!("read helper printed no rows: {text}"))?;
                serde_json::from_str(json).map_err(|e| format!("read helper: {e}"))
            }
        }
    }

    pub fn rows(&self, route: &str, mailbox: &str, calendar: Option<&str>) -> Vec<StoredRow> {
        self.try_rows(route, mailbox, calendar).expect("read rows")
    }

    /// The qualified events table of this configuration.
    pub fn events_table(&self) -> String {
        let schema = self.config["schema"]
            .as_str()
            .map(|s| format!("{s}."))
            .unwrap_or_default();
        let prefix = self.config["table_prefix"].as_str().unwrap_or("");
        format!("{schema}{prefix}events")
    }

    /// Runs SQL statements on a connection of its own (for inspection in tests).
    pub fn query_i64(&self, sql: &str) -> i64 {
        let url = self.db.url.clone();
        let engine = self.db.engine;
        let sql = sql.to_string();
        runtime().block_on(async move {
            match engine {
                Engine::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&url)
                        .await
                        .expect("connect");
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .expect("query")
                }
                Engine::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .expect("query")
                }
                Engine::MariaDb => {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.expect("connect");
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .expect("query")
                }
            }
        })
    }

    /// Runs a query returning one text column on a connection of its own.
    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let url = self.db.url.clone();
        let engine = self.db.engine;
        let sql = sql.to_string();
        runtime().block_on(async move {
            match engine {
                Engine::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&url)
                        .await
                        .expect("connect");
                    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut c)
                        .await
                        .expect("query")
                }
                Engine::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
                    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut c)
                        .await
                        .expect("query")
                }
                Engine::MariaDb => {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.expect("connect");
                    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut c)
                        .await
                        .expect("query")
                }
            }
        })
    }

    /// Runs a statement on a connection of its own.
    pub fn execute(&self, sql: &str) {
        let url = self.db.url.clone();
        let engine = self.db.engine;
        let sql = sql.to_string();
        runtime().block_on(async move {
            match engine {
                Engine::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&url)
                        .await
                        .expect("connect");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .expect("execute");
                }
                Engine::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .expect("execute");
                }
                Engine::MariaDb => {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.expect("connect");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await
                        .expect("execute");
                }
            }
        });
    }
}

/// Loads the plugin library once per path and returns its table (the library is leaked: calpump
/// never unloads plugins either).
pub fn load_table(path: &str) -> Result<&'static SinkPluginV1, String> {
    // SAFETY: the library is our own plugin; its initialisers are safe to run.
    let lib =
        unsafe { libloading::Library::new(path) }.map_err(|e| format!("loading {path}: {e}"))?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: the symbol has the ABI's entry signature.
    let entry: libloading::Symbol<'static, SinkEntryFn> =
        unsafe { lib.get(SINK_ENTRY_SYMBOL) }.map_err(|e| format!("no entry symbol: {e}"))?;
    // SAFETY: the entry returns a pointer to a static table that lives as long as the library.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err("the entry returned no table".into());
    }
    // SAFETY: non-null, static, and the library is never unloaded.
    Ok(unsafe { &*table })
}

fn hold_thread<F, Fut>(f: F) -> Result<Hold, String>
where
    F: FnOnce(mpsc::Sender<Result<(), String>>, mpsc::Receiver<()>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || runtime().block_on(f(ready_tx, release_rx)));
    ready_rx
        .recv()
        .map_err(|_| "the hold thread ended early".to_string())??;
    Ok(Hold::Exclusive(Box::new(HoldGuard {
        release: Some(release_tx),
        handle: Some(handle),
    })))
}

struct HoldGuard {
    release: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Harness for DbHarness {
    fn reopen_spec(&self) -> Value {
        json!({ "config": self.config, "plugin": self.plugin })
    }

    fn reopen(spec: &Value) -> Result<Box<dyn SinkHandle>, SinkError> {
        let config = spec["config"].clone();
        match spec["plugin"].as_str() {
            None => Ok(Box::new(DatabaseSink::create(config)?)),
            Some(path) => {
                let table = load_table(path).map_err(SinkError::fatal)?;
                Ok(Box::new(TableSink::create(table, &config)?))
            }
        }
    }

    fn read_back(&self, route: &str, mailbox: &str, calendar: &str) -> Result<Contents, String> {
        let rows = self.try_rows(route, mailbox, Some(calendar))?;
        let mut out = Contents::new();
        for row in rows {
            let hash = row.event.content_hash();
            if hash != row.content_hash {
                return Err(format!(
                    "row {} does not read back as written: content_hash column {} but the stored fields hash to {hash}",
                    row.event.key(),
                    row.content_hash
                ));
            }
            out.insert(
                EventKey::from_stored(row.event.key().as_str()),
                Stored {
                    content_hash: hash,
                    deleted: row.deleted_at.is_some(),
                    revision: Some(format!("{}|{}", row.run_id, row.synced_at.to_rfc3339())),
                },
            );
        }
        Ok(out)
    }

    fn keeps_deleted(&self) -> bool {
        self.config["delete"].as_str() != Some("hard")
    }

    fn hold_mailbox(&self, route: &str, mailbox: &str) -> Result<Hold, String> {
        let url = self.db.url.clone();
        let table = self.events_table();
        let (route, mailbox) = (route.to_string(), mailbox.to_string());
        match self.db.engine {
            // A writer holding row locks on every row of the mailbox until released.
            Engine::Postgres => hold_thread(move |ready, release| async move {
                let setup = async {
                    let mut c = sqlx::PgConnection::connect(&url).await?;
                    sqlx::raw_sql("BEGIN").execute(&mut c).await?;
                    let sql = format!(
                        "UPDATE {table} SET synced_at = synced_at WHERE route = $1 AND mailbox = $2"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&route)
                        .bind(&mailbox)
                        .execute(&mut c)
                        .await?;
                    Ok::<_, sqlx::Error>(c)
                };
                match setup.await {
                    Ok(mut c) => {
                        let _ = ready.send(Ok(()));
                        let _ = release.recv();
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("hold: {e}")));
                    }
                }
            }),
            Engine::MariaDb => hold_thread(move |ready, release| async move {
                let setup = async {
                    let mut c = sqlx::MySqlConnection::connect(&url).await?;
                    sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .execute(&mut c)
                        .await?;
                    sqlx::raw_sql("START TRANSACTION").execute(&mut c).await?;
                    let sql = format!(
                        "UPDATE {table} SET synced_at = synced_at WHERE route = ? AND mailbox = ?"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&route)
                        .bind(&mailbox)
                        .execute(&mut c)
                        .await?;
                    Ok::<_, sqlx::Error>(c)
                };
                match setup.await {
                    Ok(mut c) => {
                        let _ = ready.send(Ok(()));
                        let _ = release.recv();
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("hold: {e}")));
                    }
                }
            }),
            // SQLite has one writer at a time by design: the hold is a long reader (a WAL
            // snapshot of the mailbox's rows), which no writer may wait for.
            Engine::Sqlite if matches!(self.reader, Reader::Process) => {
                let spec = json!({ "mode": "hold", "url": url, "table": table, "route": route, "mailbox": mailbox });
                let mut child = helper(&spec)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("hold helper: {e}"))?;
                let stdout = child.stdout.take().ok_or("hold helper has no stdout")?;
                let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
                let held = lines.any(|l| l.is_ok_and(|l| l.contains(HELPER_HELD)));
                if !held {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("the hold helper did not report holding".into());
                }
                Ok(Hold::Shared(Box::new(ChildGuard(Some(child)))))
            }
            Engine::Sqlite => {
                let hold = hold_thread(move |ready, release| async move {
                    let setup = async {
                        let mut c = sqlx::SqliteConnection::connect(&url).await?;
                        sqlx::raw_sql("BEGIN").execute(&mut c).await?;
                        let sql =
                            format!("SELECT COUNT(*) FROM {table} WHERE route = ? AND mailbox = ?");
                        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                            .bind(&route)
                            .bind(&mailbox)
                            .fetch_one(&mut c)
                            .await?;
                        Ok::<_, sqlx::Error>(c)
                    };
                    match setup.await {
                        Ok(mut c) => {
                            let _ = ready.send(Ok(()));
                            let _ = release.recv();
                            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("hold: {e}")));
                        }
                    }
                })?;
                Ok(match hold {
                    Hold::Exclusive(guard) | Hold::Shared(guard) => Hold::Shared(guard),
                })
            }
        }
    }
}

/// Builds the plugin cdylib with cargo and returns the path of the `.so`.
pub fn build_plugin() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let status = std::process::Command::new(&cargo)
        .args([
            "build",
            "-p",
            "calpump-sink-database-plugin",
            "--manifest-path",
            manifest,
        ])
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p calpump-sink-database-plugin failed"
    );
    let out = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let target = meta["target_directory"].as_str().expect("target_directory");
    let path = format!(
        "{target}/debug/{}calpump_database{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    assert!(std::path::Path::new(&path).exists(), "{path} was not built");
    path
}

/// The sink's own table, linked in.
pub fn linked_table() -> &'static SinkPluginV1 {
    calpump_sink_database::sink_table()
}

/// Checks a `Sink::check` through the linked crate.
pub fn check(config: Value) -> Result<Vec<String>, SinkError> {
    <DatabaseSink as Sink>::check(&config)
}

/// Marks the helper's JSON line.
const HELPER_JSON: &str = "CALPUMP-HELPER-JSON ";
const HELPER_HELD: &str = "CALPUMP-HELPER-HELD";
/// The environment variable that makes [`serve_helper`] act.
pub const HELPER_ENV: &str = "CALPUMP_DB_TEST_HELPER";
/// The name of the `#[test]` that calls [`serve_helper`] in a test binary using the helper.
pub const HELPER_TEST: &str = "helper_process_for_sqlite_reads";

fn helper(spec: &Value) -> std::process::Command {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([HELPER_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, spec.to_string())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    cmd
}

struct ChildGuard(Option<std::process::Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            drop(child.stdin.take()); // EOF: the helper rolls back and exits
            let _ = child.wait();
        }
    }
}

/// The helper process's side: does nothing unless [`HELPER_ENV`] is set. In `read` mode it
/// prints the rows of a (route, mailbox[, calendar]) as JSON; in `hold` mode it holds a read
/// transaction on a mailbox's rows until its stdin closes.
pub fn serve_helper() {
    let Ok(text) = std::env::var(HELPER_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&text).expect("helper spec");
    match spec["mode"].as_str() {
        Some("read") => {
            let sink = DatabaseSink::create(spec["config"].clone()).expect("open for reading");
            let rows = sink
                .read_rows(
                    spec["route"].as_str().unwrap_or_default(),
                    spec["mailbox"].as_str().unwrap_or_default(),
                    spec["calendar"].as_str(),
                )
                .expect("read rows");
            println!(
                "\n{HELPER_JSON}{}",
                serde_json::to_string(&rows).expect("rows as JSON")
            );
        }
        Some("hold") => {
            runtime().block_on(async {
                let url = spec["url"].as_str().unwrap_or_default();
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
                sqlx::raw_sql("BEGIN").execute(&mut c).await.expect("begin");
                let sql = format!(
                    "SELECT COUNT(*) FROM {} WHERE route = ? AND mailbox = ?",
                    spec["table"].as_str().unwrap_or_default()
                );
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(spec["route"].as_str().unwrap_or_default())
                    .bind(spec["mailbox"].as_str().unwrap_or_default())
                    .fetch_one(&mut c)
                    .await
                    .expect("read");
                println!("\n{HELPER_HELD}");
                let mut sink = String::new();
                while std::io::stdin()
                    .read_line(&mut sink)
                    .map(|n| n > 0)
                    .unwrap_or(false)
                {}
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
            });
        }
        other => panic!("unknown helper mode {other:?}"),
    }
    std::process::exit(0);
}
