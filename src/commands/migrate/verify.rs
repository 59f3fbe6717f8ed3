//! `calpump migrate verify`: the route read through both profiles and compared
//! ([`calpump_engine::migrate::compare_route`]), as text or `--json`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use calpump_engine::config::RouteConfig;
use calpump_engine::diagnostics::Lang;
use calpump_engine::migrate::{
    CompareOptions, EventRef, MailboxComparison, RouteComparison, compare_route,
};
use calpump_engine::runner::route_window;
use chrono::Utc;
use serde_json::{Value, json};

use super::{diag_json, diag_line, route_of, target_of};
use crate::cli::{Global, MigrateVerifyArgs};
use crate::error::Result;
use crate::i18n::tr;

fn when(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn event_line(e: &EventRef) -> String {
    let calendar = if e.calendar == calpump_engine::source::DEFAULT_CALENDAR {
        String::new()
    } else {
        format!(" [{}]", e.calendar)
    };
    format!("\"{}\" {}{calendar}  {}", e.subject, when(e.start), e.key)
}

pub async fn verify(global: &Global, args: &MigrateVerifyArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let config = crate::setup::load_config(&global.config)?;
    let route = route_of(&config, &args.route, lang)?;
    let to = target_of(&config, &route, &args.to, lang)?;
    let current = crate::setup::build_source(&config, &route.profile)?;
    let target = crate::setup::build_source(&config, to)?;
    let window = route_window(&route, Utc::now());
    let cmp = compare_route(
        &current,
        &target,
        &route,
        window,
        &CompareOptions {
            concurrency: route.concurrency,
            keep_clean: true,
            shutdown: crate::setup::shutdown_on_signals(),
            ..CompareOptions::default()
        },
    )
    .await;
    let clean = cmp.summary.clean() && cmp.route_errors.is_empty() && !cmp.interrupted;
    let names = Sides {
        current: format!("{} ({})", route.profile, cmp.current_backend),
        target: format!("{to} ({})", cmp.target_backend),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&verify_json(&cmp, &route, to, clean, lang))
                .unwrap_or_default()
        );
    } else {
        print_verify(&cmp, &names, clean, lang);
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct Sides {
    current: String,
    target: String,
}

fn verify_json(
    cmp: &RouteComparison,
    route: &RouteConfig,
    to: &str,
    clean: bool,
    lang: Lang,
) -> Value {
    let errors = |list: &[calpump_engine::migrate::CalendarError]| {
        list.iter()
            .map(|e| {
                let mut d = diag_json(&e.diagnostic, lang);
                d["calendar"] = json!(e.calendar);
                d
            })
            .collect::<Vec<_>>()
    };
    json!({
        "route": cmp.route,
        "current": { "profile": route.profile, "backend": cmp.current_backend },
        "target": { "profile": to, "backend": cmp.target_backend },
        "window": cmp.window,
        "clean": clean,
        "interrupted": cmp.interrupted,
        "summary": {
            "differences": cmp.summary.differences(),
            "mailboxes": cmp.summary.mailboxes,
            "compared": cmp.summary.compared,
            "current_events": cmp.summary.current_events,
            "target_events": cmp.summary.target_events,
            "only_in_current": cmp.summary.only_in_current,
            "only_in_target": cmp.summary.only_in_target,
            "changed": cmp.summary.changed,
            "rewrites": cmp.summary.rewrites,
            "unreadable_current": cmp.summary.unreadable_current,
            "unreadable_target": cmp.summary.unreadable_target,
        },
        "route_errors": cmp.route_errors.iter().map(|d| diag_json(d, lang)).collect::<Vec<_>>(),
        "mailboxes": cmp.mailboxes.iter().map(|m| json!({
            "mailbox": m.mailbox,
            "name": m.name,
            "clean": m.clean(),
            "current_events": m.current_events,
            "target_events": m.target_events,
            "current_errors": errors(&m.current_errors),
            "target_errors": errors(&m.target_errors),
            "only_in_current": m.only_in_current,
            "only_in_target": m.only_in_target,
            "changed": m.changed,
            "rewrites": m.rewrites,
        })).collect::<Vec<_>>(),
    })
}

fn print_mailbox(m: &MailboxComparison, names: &Sides, lang: Lang) {
    let who = match &m.name {
        Some(n) => format!("{n} <{}>", m.mailbox),
        None => m.mailbox.clone(),
    };
    if !m.compared() {
        println!("✗ {who}");
        for (side, errors) in [
            (&names.current, &m.current_errors),
            (&names.target, &m.target_errors),
        ] {
            for e in errors {
                let calendar = if e.calendar.is_empty()
                    || e.calendar == calpump_engine::source::DEFAULT_CALENDAR
                {
                    String::new()
                } else {
                    format!(" ({})", e.calendar)
                };
                println!(
                    "    {}{calendar}: [{}] {}",
                    tr!(
                        lang,
                        format!("not readable through {side}"),
                        format!("nicht lesbar über {side}")
                    ),
                    e.diagnostic.code(),
                    e.diagnostic.info().texts(lang).title
                );
                if !e.diagnostic.detail().is_empty() {
                    println!("      {}", e.diagnostic.detail());
                }
            }
        }
        return;
    }
    println!(
        "✗ {who}  {}",
        tr!(
            lang,
            format!(
                "{} events through {}, {} through {}",
                m.current_events, names.current, m.target_events, names.target
            ),
            format!(
                "{} Termine über {}, {} über {}",
                m.current_events, names.current, m.target_events, names.target
            )
        )
    );
    for e in &m.only_in_current {
        println!(
            "    {} {}",
            tr!(
                lang,
                format!("only in {}:", names.current),
                format!("nur in {}:", names.current)
            ),
            event_line(e)
        );
    }
    for e in &m.only_in_target {
        println!(
            "    {} {}",
            tr!(
                lang,
                format!("only in {}:", names.target),
                format!("nur in {}:", names.target)
            ),
            event_line(e)
        );
    }
    for d in &m.changed {
        println!(
            "    {} {}",
            tr!(lang, "differs:", "weicht ab:"),
            event_line(&d.event)
        );
        for f in &d.fields {
            println!(
                "        {}: {} → {}",
                f.field,
                show(&f.current, lang),
                show(&f.target, lang)
            );
        }
    }
    for d in &m.rewrites {
        println!(
            "    {} {}",
            tr!(
                lang,
                "rewritten by a switch:",
                "bei einer Umstellung neu geschrieben:"
            ),
            event_line(&d.event)
        );
        for f in &d.fields {
            println!("        {}: {} → {}", f.field, f.current, f.target);
        }
    }
}

fn show(value: &str, lang: Lang) -> String {
    if value.is_empty() {
        tr!(lang, "(none)", "(keiner)").to_string()
    } else {
        format!("\"{value}\"")
    }
}

fn print_verify(cmp: &RouteComparison, names: &Sides, clean: bool, lang: Lang) {
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "migrate verify: route {} — {} compared with {}, window {} – {}",
                cmp.route,
                names.current,
                names.target,
                when(cmp.window.start),
                when(cmp.window.end)
            ),
            format!(
                "migrate verify: Route {} — {} verglichen mit {}, Fenster {} – {}",
                cmp.route,
                names.current,
                names.target,
                when(cmp.window.start),
                when(cmp.window.end)
            )
        )
    );
    for d in &cmp.route_errors {
        println!("✗ {}", diag_line(d, lang));
    }
    let mut clean_mailboxes = 0;
    for m in &cmp.mailboxes {
        if m.clean() {
            clean_mailboxes += 1;
        } else {
            print_mailbox(m, names, lang);
        }
    }
    if clean_mailboxes > 0 {
        println!(
            "✓ {}",
            tr!(
                lang,
                format!("{clean_mailboxes} mailboxes read alike through both profiles"),
                format!("{clean_mailboxes} Postfächer lesen sich über beide Profile gleich")
            )
        );
    }
    let s = &cmp.summary;
    if s.rewrites > 0 {
        let mut fields: Vec<String> = cmp
            .mailboxes
            .iter()
            .flat_map(|m| &m.rewrites)
            .flat_map(|d| d.fields.iter().map(|f| f.field.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        fields.sort();
        println!(
            "✗ {}",
            tr!(
                lang,
                format!(
                    "{} events are equal after normalisation but their content hash differs ({}): the first sync after a switch rewrites them once in the sinks — not clean; a parity defect of a backend, or a text changed only in its spelling between the two reads",
                    s.rewrites,
                    fields.join(", ")
                ),
                format!(
                    "{} Termine sind nach der Normalisierung gleich, ihr Inhalts-Hash aber nicht ({}): Die erste Synchronisierung nach einer Umstellung schreibt sie einmal neu in die Senken — nicht sauber; ein Paritätsfehler eines Backends oder ein Text, der sich zwischen den beiden Lesevorgängen nur in der Schreibweise geändert hat",
                    s.rewrites,
                    fields.join(", ")
                )
            )
        );
    }
    let verdict = if clean {
        tr!(lang, "clean", "sauber")
    } else if cmp.interrupted {
        tr!(lang, "interrupted", "abgebrochen")
    } else {
        tr!(lang, "NOT clean", "NICHT sauber")
    };
    println!(
        "{}",
        tr!(
            lang,
            format!(
                "Summary: {} mailboxes ({} compared), {} events through {}, {} through {}: {} only in {}, {} only in {}, {} differ, {} rewritten; unreadable: {} through {}, {} through {} — {verdict}",
                s.mailboxes,
                s.compared,
                s.current_events,
                names.current,
                s.target_events,
                names.target,
                s.only_in_current,
                names.current,
                s.only_in_target,
                names.target,
                s.changed,
                s.rewrites,
                s.unreadable_current,
                names.current,
                s.unreadable_target,
                names.target
            ),
            format!(
                "Ergebnis: {} Postfächer ({} verglichen), {} Termine über {}, {} über {}: {} nur in {}, {} nur in {}, {} weichen ab, {} neu geschrieben; nicht lesbar: {} über {}, {} über {} — {verdict}",
                s.mailboxes,
                s.compared,
                s.current_events,
                names.current,
                s.target_events,
                names.target,
                s.only_in_current,
                names.current,
                s.only_in_target,
                names.target,
                s.changed,
                s.rewrites,
                s.unreadable_current,
                names.current,
                s.unreadable_target,
                names.target
            )
        )
    );
    if s.unreadable_target > 0 || s.unreadable_current > 0 {
        println!(
            "{}",
            tr!(
                lang,
                format!(
                    "What is missing and how to grant it: `calpump migrate plan --route {} --to <profile>`.",
                    cmp.route
                ),
                format!(
                    "Was fehlt und wie es erteilt wird: `calpump migrate plan --route {} --to <Profil>`.",
                    cmp.route
                )
            )
        );
    }
    if !clean && s.differences() + s.rewrites > 0 {
        println!(
            "{}",
            tr!(
                lang,
                "Changes made in Exchange while the two profiles read show up as differences too: run verify again to tell them from real ones.",
                "Änderungen in Exchange während der beiden Lesevorgänge erscheinen ebenfalls als Abweichung: verify erneut ausführen, um sie von echten zu unterscheiden."
            )
        );
    }
}
