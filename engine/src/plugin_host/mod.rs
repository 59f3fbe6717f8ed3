//! The plugin host: a registry of sink plugins and the handles the runner writes through.
//!
//! Two kinds of plugins go through the very same ABI table ([`SinkPluginV1`]):
//! * **built-ins**, linked into the binary, registered with [`PluginRegistry::register_builtin`];
//! * **loaded** ones, `*.so` / `*.dylib` / `*.dll` files found only in the configured
//!   `[plugins] dirs` and in the `plugins/` directory beside the running executable
//!   ([`PluginRegistry::discover`]). Nothing else is ever loaded.
//!
//! A file's table header (`abi_major`, `abi_minor`, `struct_size`) is read before anything else;
//! a different major version or a table smaller than v1.0 is refused with an error naming the
//! file and both versions ([`catalogue::general::PLUGIN_REFUSED`]). Libraries are never
//! unloaded: a loaded [`libloading::Library`] is leaked on purpose, so the table and every
//! pointer the plugin handed out stay valid for the life of the process.
//!
//! Names (the table's `name`, used as `plugin = "…"`), checked after the ABI:
//! * a **file** named like a **built-in** sink replaces the built-in, whichever was registered
//!   first — so an admin can update one sink (`libcalpump_doorsign.so` into a plugin
//!   directory) without a new calpump binary. A warning names the file, the file's version and
//!   the built-in's; [`PluginInfo::replaces_builtin`] (and `calpump plugins`) shows it;
//! * two **files** with one name are an error ([`PluginError::NameClash`], naming both files):
//!   the one found first (configured directories in order, then `plugins/` beside the
//!   executable; file names in order inside a directory) stays, the other is refused;
//! * two **built-ins** with one name are an error of the binary.
//!
//! A [`SinkHandle`] is one instance of a plugin (`[sinks.<name>]`), shared by every route that
//! names it; see [`handle`].

mod handle;
mod host_api;
mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use calpump_plugin::abi::{
    self, OwnedBuf, SINK_ENTRY_SYMBOL, SINK_PLUGIN_V1_0_SIZE, SinkEntryFn, SinkPluginV1, Status,
    StrRef, TableHeader,
};
use serde::Serialize;

use crate::config::PluginsConfig;
use crate::diagnostics::{Diagnostic, catalogue};

pub use handle::{SinkCallError, SinkCallErrorKind, SinkHandle, StuckCall};
pub use settings::{SettingsIssue, resolve_settings};

/// Where a registered plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginOrigin {
    /// Linked into the binary.
    Builtin,
    /// Loaded from this file.
    File(PathBuf),
}

/// What `calpump plugins` shows about a plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub origin: PluginOrigin,
    /// JSON Schema of the plugin's configuration table (as the plugin gave it; `null` when it is
    /// not valid JSON).
    pub config_schema: serde_json::Value,
    /// A plugin file named like a built-in sink replaces it: the replaced built-in's version.
    pub replaces_builtin: Option<String>,
}

/// A plugin file that was found but not used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedPlugin {
    pub file: PathBuf,
    pub reason: String,
    pub diagnostic: Diagnostic,
}

/// Why a plugin could not be registered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {file} refused: {reason}")]
    Refused { file: PathBuf, reason: String },
    #[error("two plugins are named `{name}`: {first} and {second}; remove one")]
    NameClash {
        name: String,
        first: String,
        second: String,
    },
    #[error("cannot read plugin directory {dir}: {reason}")]
    Directory { dir: PathBuf, reason: String },
}

impl PluginError {
    /// The catalogue entry for this error with the error's text as detail.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::new(&catalogue::general::PLUGIN_REFUSED, self.to_string())
    }
}

#[derive(Clone)]
struct Registered {
    info: PluginInfo,
    table: &'static SinkPluginV1,
    host: &'static abi::HostApiV1,
}

/// Every sink plugin this process can use.
#[derive(Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Registered>,
    /// Every built-in registered, by name → version (also those a file replaced).
    builtins: BTreeMap<String, String>,
    refused: Vec<RefusedPlugin>,
    /// Canonical paths already looked at (a directory may be configured twice).
    seen_files: Vec<PathBuf>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("refused", &self.refused)
            .finish()
    }
}

/// The file extension of shared libraries on this platform.
pub const LIBRARY_EXTENSIONS: &[&str] = &["so", "dylib", "dll"];

/// A borrowed ABI string as an owned `String`.
///
/// # Safety
/// `s` must point to valid bytes for as long as the table lives (plugins hand out statics).
unsafe fn table_str(s: StrRef) -> String {
    // SAFETY: forwarded to the caller.
    unsafe { s.to_string_lossy() }
}

impl PluginRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a sink linked into the binary (`my_sink::sink_table()`).
    pub fn register_builtin(&mut self, table: &'static SinkPluginV1) -> Result<(), PluginError> {
        let origin = PluginOrigin::Builtin;
        // SAFETY: a `&'static SinkPluginV1` from `sink_table!` is a complete v1 table.
        unsafe { self.register(table, origin, "(built in)") }
    }

    /// Looks at every library file in the configured directories and in `plugins/` beside the
    /// running executable. Refused files are recorded ([`PluginRegistry::refused`]) and
    /// returned; the process goes on.
    pub fn discover(&mut self, config: &PluginsConfig) -> Vec<PluginError> {
        let mut errors = Vec::new();
        let mut dirs: Vec<(PathBuf, bool)> =
            config.dirs.iter().map(|d| (d.clone(), true)).collect();
        if let Some(dir) = exe_plugin_dir() {
            dirs.push((dir, false));
        }
        for (dir, configured) in dirs {
            if !configured && !dir.is_dir() {
                continue;
            }
            errors.extend(self.load_dir(&dir));
        }
        errors
    }

    /// Loads every `*.so` / `*.dylib` / `*.dll` of one directory (not recursive), in name order.
    pub fn load_dir(&mut self, dir: &Path) -> Vec<PluginError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                return vec![PluginError::Directory {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                }];
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| LIBRARY_EXTENSIONS.contains(&e))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|file| self.load_file(&file).err())
            .collect()
    }

    /// Loads one plugin file. A refused file is also recorded in [`PluginRegistry::refused`].
    pub fn load_file(&mut self, file: &Path) -> Result<(), PluginError> {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        if self.seen_files.contains(&canonical) {
            return Ok(());
        }
        self.seen_files.push(canonical.clone());
        let result = self.load_file_inner(&canonical);
        if let Err(err) = &result {
            let reason = match err {
                PluginError::Refused { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            tracing::warn!(file = %canonical.display(), reason = %reason, "plugin refused");
            self.refused.push(RefusedPlugin {
                file: canonical,
                reason,
                diagnostic: err.diagnostic(),
            });
        }
        result
    }

    fn load_file_inner(&mut self, file: &Path) -> Result<(), PluginError> {
        let refuse = |reason: String| PluginError::Refused {
            file: file.to_path_buf(),
            reason,
        };
        // SAFETY: loading a library runs its initialisers. That is the trust an admin gives a
        // file by putting it into a configured plugin directory; nothing else is loaded.
        let library = unsafe { libloading::Library::new(file) }
            .map_err(|e| refuse(format!("cannot be loaded: {e}")))?;
        // Never unloaded: the table, its strings and every instance live as long as the process.
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: the symbol's type is the documented entry signature of ABI v1.
        let entry: libloading::Symbol<'static, SinkEntryFn> =
            unsafe { library.get(SINK_ENTRY_SYMBOL) }.map_err(|_| {
                refuse("it does not export `calpump_sink_v1`: not a calpump sink plugin".into())
            })?;
        // SAFETY: calling the entry function is part of the ABI contract.
        let table_ptr = unsafe { entry() };
        if table_ptr.is_null() {
            return Err(refuse("`calpump_sink_v1` returned no table".into()));
        }
        // SAFETY: every table version starts with the header; read it alone first.
        let header: TableHeader = unsafe { *(table_ptr as *const TableHeader) };
        if header.abi_major != abi::ABI_MAJOR {
            return Err(refuse(format!(
                "built for plugin ABI {}.{}, this calpump speaks ABI {}.{}; rebuild the plugin against calpump-plugin {}.x",
                header.abi_major,
                header.abi_minor,
                abi::ABI_MAJOR,
                abi::ABI_MINOR,
                abi::ABI_MAJOR,
            )));
        }
        if header.struct_size < SINK_PLUGIN_V1_0_SIZE {
            return Err(refuse(format!(
                "its table has {} bytes, ABI {}.{} needs at least {} (plugin says ABI {}.{}); the file is damaged or not built with calpump-plugin",
                header.struct_size,
                abi::ABI_MAJOR,
                abi::ABI_MINOR,
                SINK_PLUGIN_V1_0_SIZE,
                header.abi_major,
                header.abi_minor,
            )));
        }
        // SAFETY: the header says the table is a v1 table of at least the v1.0 size.
        let table: &'static SinkPluginV1 = unsafe { &*table_ptr };
        let label = file.display().to_string();
        // SAFETY: as above.
        unsafe { self.register(table, PluginOrigin::File(file.to_path_buf()), &label) }
    }

    /// # Safety
    /// `table` must be a complete v1 table living for the rest of the process.
    unsafe fn register(
        &mut self,
        table: &'static SinkPluginV1,
        origin: PluginOrigin,
        label: &str,
    ) -> Result<(), PluginError> {
        // SAFETY: a v1 table's strings are statics of the plugin.
        let (name, version, schema) = unsafe {
            (
                table_str(table.name),
                table_str(table.version),
                table_str(table.config_schema),
            )
        };
        if name.trim().is_empty() {
            return Err(PluginError::Refused {
                file: PathBuf::from(label),
                reason: "the plugin has an empty name".into(),
            });
        }
        let existing = self
            .plugins
            .get(&name)
            .map(|r| (r.info.origin.clone(), r.info.version.clone()));
        let mut replaces_builtin = None;
        match (&origin, existing) {
            (_, None) => {}
            (PluginOrigin::File(_), Some((PluginOrigin::Builtin, builtin_version))) => {
                // The file replaces the built-in registered before it.
                log_replacement(&name, label, &version, &builtin_version);
                replaces_builtin = Some(builtin_version);
            }
            (PluginOrigin::File(_), Some((PluginOrigin::File(first), _))) => {
                return Err(PluginError::NameClash {
                    name,
                    first: first.display().to_string(),
                    second: label.to_string(),
                });
            }
            (PluginOrigin::Builtin, Some((existing_origin, existing_version))) => {
                if self.builtins.contains_key(&name) {
                    return Err(PluginError::NameClash {
                        name,
                        first: "the built-in one".to_string(),
                        second: label.to_string(),
                    });
                }
                // A built-in registered after a file of its name: the file stays.
                if let PluginOrigin::File(file) = &existing_origin {
                    log_replacement(
                        &name,
                        &file.display().to_string(),
                        &existing_version,
                        &version,
                    );
                }
                if let Some(registered) = self.plugins.get_mut(&name) {
                    registered.info.replaces_builtin = Some(version.clone());
                }
                self.builtins.insert(name, version);
                return Ok(());
            }
        }
        if origin == PluginOrigin::Builtin {
            self.builtins.insert(name.clone(), version.clone());
        }
        let info = PluginInfo {
            name: name.clone(),
            version,
            abi_major: table.abi_major,
            abi_minor: table.abi_minor,
            origin,
            config_schema: serde_json::from_str(&schema).unwrap_or(serde_json::Value::Null),
            replaces_builtin,
        };
        let host = host_api::host_api_for(&name);
        tracing::debug!(plugin = %name, origin = %label, "sink plugin registered");
        self.plugins.insert(name, Registered { info, table, host });
        Ok(())
    }

    /// Every usable plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.plugins.values().map(|r| &r.info)
    }

    pub fn get(&self, name: &str) -> Option<&PluginInfo> {
        self.plugins.get(name).map(|r| &r.info)
    }

    /// The names of every usable plugin, comma-separated (for messages).
    pub fn known_names(&self) -> String {
        if self.plugins.is_empty() {
            "none".to_string()
        } else {
            self.plugins.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// Files found but not used.
    pub fn refused(&self) -> &[RefusedPlugin] {
        &self.refused
    }

    /// Runs the plugin's `check` on a configuration (JSON with secrets resolved). Returns its
    /// warnings, or the error it names.
    pub fn check(
        &self,
        plugin: &str,
        settings: &serde_json::Value,
    ) -> Result<Vec<String>, SinkCallError> {
        let registered = self.plugins.get(plugin).ok_or_else(|| {
            SinkCallError::new(
                plugin,
                "check",
                SinkCallErrorKind::Config,
                format!("unknown plugin `{plugin}` (known: {})", self.known_names()),
            )
        })?;
        let table = registered.table;
        let json = settings.to_string();
        let mut out = OwnedBuf::empty();
        // SAFETY: a valid table; the config string lives for the call; `out` is written once.
        let status = unsafe { (table.check)(StrRef::new(&json), &mut out) };
        // SAFETY: the buffer came from this plugin and is handed back exactly once.
        let text = unsafe { handle::take_buf(table, out) };
        match status {
            Status::OK => {
                #[derive(serde::Deserialize, Default)]
                struct Report {
                    #[serde(default)]
                    warnings: Vec<String>,
                }
                let report: Report = serde_json::from_str(&text).unwrap_or_default();
                Ok(report
                    .warnings
                    .into_iter()
                    .map(|w| crate::secret::redact(&w))
                    .collect())
            }
            other => Err(SinkCallError::from_status(plugin, "check", other, &text)),
        }
    }

    /// Creates one instance of a plugin for `[sinks.<sink_name>]`. `settings` is the table's
    /// JSON with secrets resolved ([`resolve_settings`]). Runs on a blocking thread.
    pub async fn create_sink(
        &self,
        sink_name: &str,
        plugin: &str,
        settings: serde_json::Value,
        timeout: Duration,
    ) -> Result<SinkHandle, SinkCallError> {
        let registered = self.plugins.get(plugin).ok_or_else(|| {
            SinkCallError::new(
                sink_name,
                "create",
                SinkCallErrorKind::Config,
                format!("unknown plugin `{plugin}` (known: {})", self.known_names()),
            )
        })?;
        SinkHandle::create(
            sink_name,
            plugin,
            registered.table,
            registered.host,
            settings,
            timeout,
        )
        .await
    }
}

/// The warning of a plugin file taking a built-in sink's place.
fn log_replacement(name: &str, file: &str, file_version: &str, builtin_version: &str) {
    tracing::warn!(
        plugin = %name,
        file = %file,
        version = %file_version,
        builtin_version = %builtin_version,
        "a plugin file replaces the built-in sink of its name"
    );
}

/// `plugins/` beside the running executable.
pub fn exe_plugin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("plugins"))
}

#[cfg(test)]
mod tests;
