//! Reading a route through a source without touching any state: its mailboxes (as the runner
//! resolves them) and full reads of their calendars' window (no cursor in, the cursor out is
//! dropped, nothing committed, no sink called).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use calpump_plugin::{Event, EventKey, Window};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{CalendarSelection, RouteConfig};
use crate::diagnostics::{Diagnostic, catalogue};
use crate::source::{
    CalendarInfo, MailboxInfo, Removal, Source, SourceBatch, SyncMessage, SyncOutput, SyncRequest,
};

/// A route's mailboxes as one source sees them.
#[derive(Debug, Clone, Default)]
pub struct ResolvedMailboxes {
    pub mailboxes: Vec<MailboxInfo>,
    /// Configured addresses the source could not look up.
    pub failures: Vec<(String, Diagnostic)>,
    /// Room lists that could not be found or read.
    pub route_errors: Vec<Diagnostic>,
}

/// The route's mailboxes through `source`: configured addresses first, then the rooms of its
/// room lists, each address once (lower-case) — the runner's order and rules.
pub async fn resolve_mailboxes(source: &dyn Source, route: &RouteConfig) -> ResolvedMailboxes {
    let mut out = ResolvedMailboxes::default();
    let mut seen = HashSet::new();
    for address in &route.mailboxes {
        let normalized = address.trim().to_lowercase();
        if !seen.insert(normalized.clone()) {
            continue;
        }
        match source.resolve_mailbox(&normalized).await {
            Ok(info) => {
                seen.insert(info.address.to_lowercase());
                out.mailboxes.push(MailboxInfo {
                    address: normalized,
                    ..info
                });
            }
            Err(e) => out.failures.push((normalized, e.diagnostic)),
        }
    }
    if route.room_lists.is_empty() {
        return out;
    }
    let lists = if route.room_lists.iter().any(|l| !l.contains('@')) {
        match source.room_lists().await {
            Ok(lists) => lists,
            Err(e) => {
                out.route_errors.push(e.diagnostic);
                return out;
            }
        }
    } else {
        Vec::new()
    };
    for wanted in &route.room_lists {
        let address = if wanted.contains('@') {
            Some(wanted.trim().to_lowercase())
        } else {
            lists
                .iter()
                .find(|l| {
                    l.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(wanted.trim()))
                        || l.address.eq_ignore_ascii_case(wanted.trim())
                })
                .map(|l| l.address.to_lowercase())
        };
        let Some(address) = address else {
            out.route_errors.push(Diagnostic::new(
                &catalogue::general::ROOM_LIST_NOT_FOUND,
                format!("route {}: no room list `{wanted}`", route.name),
            ));
            continue;
        };
        match source.rooms(Some(&address)).await {
            Ok(rooms) => {
                for mut room in rooms {
                    room.address = room.address.to_lowercase();
                    if seen.insert(room.address.clone()) {
                        out.mailboxes.push(room);
                    }
                }
            }
            Err(e) => out.route_errors.push(e.diagnostic),
        }
    }
    out
}

/// A calendar that could not be read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct CalendarError {
    /// The neutral calendar path, or `""` when the mailbox's calendars could not be listed.
    pub calendar: String,
    pub diagnostic: Diagnostic,
}

/// What one source read of one mailbox.
#[derive(Debug, Clone, Default)]
pub struct MailboxRead {
    pub address: String,
    /// Every event of the calendars read, by key.
    pub events: BTreeMap<EventKey, Event>,
    pub errors: Vec<CalendarError>,
}

/// The calendars of `mailbox` the route reads, through `source`.
async fn calendars_for(
    source: &dyn Source,
    mailbox: &MailboxInfo,
    selection: &CalendarSelection,
) -> Result<Vec<CalendarInfo>, Diagnostic> {
    match selection {
        CalendarSelection::Default => Ok(vec![CalendarInfo::default_calendar()]),
        CalendarSelection::All => source.calendars(mailbox).await.map_err(|e| e.diagnostic),
        CalendarSelection::Paths(paths) => {
            let all = source.calendars(mailbox).await.map_err(|e| e.diagnostic)?;
            paths
                .iter()
                .map(|path| {
                    all.iter()
                        .find(|c| &c.path == path)
                        .cloned()
                        .ok_or_else(|| {
                            Diagnostic::new(
                                &catalogue::general::CALENDAR_NOT_FOUND,
                                format!("{}: no calendar `{path}`", mailbox.address),
                            )
                        })
                })
                .collect()
        }
    }
}

/// One request's outcome.
enum Outcome {
    Events(Vec<Event>),
    Failed(Diagnostic),
}

/// Reads the window of every calendar the route reads of `mailboxes` through `source`, in full:
/// `Source::sync` with no cursor, chunks of [`Source::preferred_chunk`], at most `concurrency`
/// calendars in flight. Results are in the order of `mailboxes`.
pub async fn read_mailboxes(
    source: &Arc<dyn Source>,
    route: &str,
    mailboxes: &[MailboxInfo],
    selection: &CalendarSelection,
    window: Window,
    concurrency: usize,
) -> Vec<MailboxRead> {
    let mut reads: Vec<MailboxRead> = mailboxes
        .iter()
        .map(|m| MailboxRead {
            address: m.address.clone(),
            ..MailboxRead::default()
        })
        .collect();
    // (mailbox index, request)
    let mut work: Vec<(usize, SyncRequest)> = Vec::new();
    for (i, mailbox) in mailboxes.iter().enumerate() {
        match calendars_for(source.as_ref(), mailbox, selection).await {
            Ok(calendars) => work.extend(calendars.into_iter().map(|calendar| {
                (
                    i,
                    SyncRequest {
                        route: route.to_string(),
                        mailbox: mailbox.clone(),
                        calendar,
                        window,
                        cursor: None,
                    },
                )
            })),
            Err(diagnostic) => reads[i].errors.push(CalendarError {
                calendar: String::new(),
                diagnostic,
            }),
        }
    }
    let chunk = source.preferred_chunk().max(1);
    let parallel = (concurrency.max(1) / chunk).max(1);
    let mut pending = work.into_iter().peekable();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < parallel && pending.peek().is_some() {
            let part: Vec<(usize, SyncRequest)> = pending.by_ref().take(chunk).collect();
            let source = Arc::clone(source);
            tasks.spawn(async move {
                let requests: Vec<SyncRequest> = part.iter().map(|(_, r)| r.clone()).collect();
                let outcomes = read_chunk(source, requests).await;
                part.into_iter().zip(outcomes).collect::<Vec<_>>()
            });
        }
        match tasks.join_next().await {
            Some(Ok(done)) => {
                for ((i, request), outcome) in done {
                    let read = &mut reads[i];
                    match outcome {
                        Outcome::Events(events) => {
                            for e in events {
                                read.events.insert(e.key().clone(), e);
                            }
                        }
                        Outcome::Failed(diagnostic) => read.errors.push(CalendarError {
                            calendar: request.calendar.path.clone(),
                            diagnostic,
                        }),
                    }
                }
            }
            Some(Err(join)) => {
                tracing::error!(route, error = %join, "a read task crashed");
            }
            None => break,
        }
    }
    reads
}

/// One `Source::sync` call: the calendars' events or their failures, in request order.
async fn read_chunk(source: Arc<dyn Source>, requests: Vec<SyncRequest>) -> Vec<Outcome> {
    let backend = source.backend().to_string();
    let total = requests.len();
    let mut events: Vec<BTreeMap<EventKey, Event>> = vec![BTreeMap::new(); total];
    let mut results: Vec<Option<Outcome>> = (0..total).map(|_| None).collect();
    let (out, mut rx) = SyncOutput::channel(8);
    let producer = tokio::spawn({
        let requests = requests.clone();
        async move { source.sync(requests, out).await }
    });
    let mut done = 0;
    while done < total {
        let Some(message) = rx.recv().await else {
            break;
        };
        match message {
            SyncMessage::Batch(i, batch) => {
                let Some(slot) = events.get_mut(i) else {
                    continue;
                };
                match batch {
                    SourceBatch::Snapshot { events } => {
                        slot.clear();
                        slot.extend(events.into_iter().map(|e| (e.key().clone(), e)));
                    }
                    // Not expected without a cursor; applied all the same.
                    SourceBatch::Delta { upserts, removals } => {
                        for r in removals {
                            match r {
                                Removal::Key(k) => {
                                    slot.remove(&k);
                                }
                                Removal::Item(id) => slot.retain(|_, e| e.source.item_id != id),
                            }
                        }
                        slot.extend(upserts.into_iter().map(|e| (e.key().clone(), e)));
                    }
                }
            }
            SyncMessage::Done(i, result) => {
                let Some(r) = results.get_mut(i) else {
                    continue;
                };
                if r.is_some() {
                    continue;
                }
                done += 1;
                *r = Some(match result {
                    Ok(_) => {
                        Outcome::Events(std::mem::take(&mut events[i]).into_values().collect())
                    }
                    Err(e) => Outcome::Failed(e.diagnostic),
                });
            }
        }
    }
    drop(rx);
    let _ = producer.await;
    results
        .into_iter()
        .zip(&requests)
        .map(|(r, request)| {
            r.unwrap_or_else(|| {
                Outcome::Failed(Diagnostic::new(
                    &catalogue::general::INTERNAL,
                    format!(
                        "the {backend} source ended without finishing calendar {} of {}",
                        request.calendar.path, request.mailbox.address
                    ),
                ))
            })
        })
        .collect()
}
