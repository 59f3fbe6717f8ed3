//! calpump's engine: Source trait, sync runner, state store, config, scheduler, plugin host, diagnostics
