//! The database sink as a loadable plugin: exports `calpump_sink_v1` returning the very table
//! calpump links in by default.
calpump_plugin::export_entry!(calpump_sink_database::sink_table);
