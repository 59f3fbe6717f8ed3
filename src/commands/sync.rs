//! `calpump sync`: every route (or `--route NAME`) once. A progress bar on a terminal, plain
//! log lines otherwise. Exit 1 when any mailbox or route failed.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use calpump_engine::diagnostics::Lang;
use calpump_engine::runner::{RunObserver, RunOptions, RunReport, run_routes};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Global, SyncArgs};
use crate::error::Result;

/// Progress on a terminal: one bar over every calendar of the run.
struct Bar(ProgressBar);

impl RunObserver for Bar {
    fn planned(&self, route: &str, calendars: usize) {
        self.0.inc_length(calendars as u64);
        self.0.set_message(route.to_string());
    }
    fn calendar_done(&self, _route: &str, mailbox: &str, _calendar: &str, _ok: bool) {
        self.0.inc(1);
        self.0.set_message(mailbox.to_string());
    }
}

/// Progress without a terminal: a log line every tenth of the calendars.
#[derive(Default)]
struct Lines {
    planned: AtomicU64,
    done: AtomicU64,
}

impl RunObserver for Lines {
    fn planned(&self, route: &str, calendars: usize) {
        self.planned.store(calendars as u64, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
        tracing::info!(route, calendars, "calendars to sync");
    }
    fn calendar_done(&self, route: &str, _mailbox: &str, _calendar: &str, _ok: bool) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let planned = self.planned.load(Ordering::SeqCst).max(1);
        let step = (planned / 10).max(1);
        if done.is_multiple_of(step) || done == planned {
            tracing::info!(route, done, planned, "sync progress");
        }
    }
}

pub async fn run(global: &Global, args: &SyncArgs) -> Result<ExitCode> {
    let config = crate::setup::load_config(&global.config)?;
    let registry = crate::setup::plugin_registry(&config);
    let (routes, _sinks) = crate::setup::routes(
        &config,
        &registry,
        args.route.as_deref(),
        Lang::detect(global.lang.as_deref()),
    )
    .await?;
    let state = crate::setup::open_state(&config).await?;
    let shutdown = crate::setup::shutdown_on_signals();

    let bar = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} calendars  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        crate::logging::set_progress_bar(Some(bar.clone()));
        Some(bar)
    } else {
        None
    };
    let observer: Arc<dyn RunObserver> = match &bar {
        Some(bar) => Arc::new(Bar(bar.clone())),
        None => Arc::new(Lines::default()),
    };
    let options = RunOptions {
        shadows: crate::setup::shadow_sources(&routes, &config),
        full: args.full,
        accept_empty: args.accept_empty,
        shutdown,
        observer: Some(observer),
        ..RunOptions::default()
    };
    let report = run_routes(&routes, Arc::clone(&state), &options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
        crate::logging::set_progress_bar(None);
    }
    state.close().await;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_report(&report, Lang::detect(global.lang.as_deref()));
    }
    Ok(if report.any_failure() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &RunReport, lang: Lang) {
    if report.routes.is_empty() {
        println!("no routes to sync");
    }
    for route in &report.routes {
        let c = &route.counts;
        // `upserts`/`deletes` count what the route handed to its sinks, not what they wrote: a
        // sink compares and writes only what changed (a full read after a switch delivers every
        // event and changes nothing).
        println!(
            "route {} ({}): {} — {} mailboxes, {} calendars, {} events and {} deletions delivered to the sinks, {} rejected, {} errors",
            route.route,
            route.backend,
            route.status.as_str(),
            c.mailboxes,
            c.calendars,
            c.upserts,
            c.deletes,
            c.rejected,
            c.errors
        );
        for error in &route.errors {
            println!("  {}", error.render(lang).replace('\n', "\n  "));
        }
        if let Some(shadow) = &route.shadow {
            let s = &shadow.summary;
            println!(
                "  shadow {} ({}): {} — {} differences ({} only in {}, {} only in the shadow, {} changed), unreadable {} / {}, {} rewrites",
                shadow.profile.as_deref().unwrap_or("?"),
                shadow.backend,
                if shadow.clean { "clean" } else { "NOT clean" },
                shadow.differences,
                s.only_in_current,
                route.backend,
                s.only_in_target,
                s.changed,
                s.unreadable_current,
                s.unreadable_target,
                s.rewrites
            );
        }
        for mailbox in &route.mailboxes {
            for d in mailbox.errors.iter().chain(&mailbox.warnings) {
                println!(
                    "  {}: {}",
                    mailbox.address,
                    d.render(lang).replace('\n', "\n    ")
                );
            }
        }
    }
}
