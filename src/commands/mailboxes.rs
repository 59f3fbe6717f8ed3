//! `calpump mailboxes PROFILE`: what a profile can see, as a tree — room lists → rooms, then the
//! mailboxes the routes using the profile name — each mailbox with its calendars (the main
//! calendar, its sub-calendars beneath it) and their item counts, or the diagnostic that says
//! why it can't be read (one unreadable mailbox does not stop the listing). Mailboxes are read
//! `--concurrency` at a time; `--filter` keeps mailboxes and room lists whose name or address
//! contains the text. Exit code 0 when everything could be read, 1 when something could not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::Arc;

use calpump_engine::diagnostics::{Diagnostic, Lang};
use calpump_engine::source::{CalendarInfo, MailboxInfo, MailboxKind, Source, SourceError};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::{Global, MailboxesArgs};
use crate::error::{CliError, Result};
use crate::i18n::{first_sentence, tr};

/// One mailbox in the tree.
#[derive(Debug, Clone)]
struct MailboxNode {
    info: MailboxInfo,
    /// Routes that name the mailbox (configured mailboxes only).
    routes: Vec<String>,
    calendars: Option<Vec<CalendarInfo>>,
    error: Option<Diagnostic>,
}

#[derive(Debug)]
struct ListNode {
    address: String,
    name: Option<String>,
    rooms: Vec<MailboxNode>,
    error: Option<Diagnostic>,
}

fn matches(filter: Option<&str>, name: Option<&str>, address: &str) -> bool {
    let Some(f) = filter else { return true };
    address.to_lowercase().contains(f) || name.is_some_and(|n| n.to_lowercase().contains(f))
}

fn diag_json(d: &Diagnostic, lang: Lang) -> Value {
    let t = d.info().texts(lang);
    json!({
        "code": d.code(),
        "title": t.title,
        "detail": d.detail(),
        "cause": t.cause,
        "remedy": t.remedy,
    })
}

fn node_json(n: &MailboxNode, lang: Lang) -> Value {
    json!({
        "address": n.info.address,
        "name": n.info.name,
        "kind": n.info.kind,
        "routes": n.routes,
        "calendars": n.calendars.as_ref().map(|cals| cals.iter().map(|c| json!({
            "path": c.path,
            "name": c.name,
            "is_default": c.is_default,
            "item_count": c.item_count,
        })).collect::<Vec<_>>()),
        "error": n.error.as_ref().map(|d| diag_json(d, lang)),
    })
}

/// A line of the tree and the lines beneath it.
struct Tree {
    text: String,
    children: Vec<Tree>,
}

impl Tree {
    fn leaf(text: String) -> Self {
        Self {
            text,
            children: Vec::new(),
        }
    }

    fn render(&self, prefix: &str, last: bool, root: bool, out: &mut String) {
        if root {
            out.push_str(&self.text);
        } else {
            out.push_str(prefix);
            out.push_str(if last { "└── " } else { "├── " });
            out.push_str(&self.text);
        }
        out.push('\n');
        let child_prefix = if root {
            String::new()
        } else {
            format!("{prefix}{}", if last { "    " } else { "│   " })
        };
        for (i, child) in self.children.iter().enumerate() {
            child.render(&child_prefix, i + 1 == self.children.len(), false, out);
        }
    }
}

fn items(n: Option<u64>, lang: Lang) -> String {
    match n {
        Some(1) => tr!(lang, "1 item", "1 Element").to_string(),
        Some(n) => format!("{n} {}", tr!(lang, "items", "Elemente")),
        None => tr!(lang, "item count unknown", "Anzahl unbekannt").to_string(),
    }
}

fn error_line(d: &Diagnostic, lang: Lang) -> String {
    let t = d.info().texts(lang);
    format!(
        "✗ [{}] {} — {}",
        d.code(),
        t.title,
        first_sentence(t.remedy)
    )
}

fn mailbox_tree(n: &MailboxNode, lang: Lang) -> Tree {
    let mut text = match &n.info.name {
        Some(name) => format!("{name} <{}>", n.info.address),
        None => n.info.address.clone(),
    };
    if !n.routes.is_empty() {
        text.push_str(&format!(
            " · {} {}",
            tr!(lang, "route", "Route"),
            n.routes.join(", ")
        ));
    }
    let mut node = Tree::leaf(text);
    if let Some(d) = &n.error {
        node.children.push(Tree::leaf(error_line(d, lang)));
    } else if let Some(cals) = &n.calendars {
        let line = |c: &CalendarInfo| {
            let mut t = format!("{} · {}", c.name, items(c.item_count, lang));
            if c.is_default {
                t.push_str(tr!(lang, " (main calendar)", " (Hauptkalender)"));
            }
            t
        };
        // The main calendar with the others (its sub-calendars in Exchange) beneath it.
        match cals.iter().position(|c| c.is_default) {
            Some(main) => {
                let mut root = Tree::leaf(line(&cals[main]));
                for (i, c) in cals.iter().enumerate() {
                    if i != main {
                        root.children.push(Tree::leaf(line(c)));
                    }
                }
                node.children.push(root);
            }
            None => node
                .children
                .extend(cals.iter().map(|c| Tree::leaf(line(c)))),
        }
    }
    node
}

/// Runs `f` for every item, at most `limit` at a time; results in input order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    let count = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let fut = f(item);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<R>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = Some(r),
            Err(e) => tracing::error!(error = %e, "a mailbox task crashed"),
        }
    }
    out.into_iter().flatten().collect()
}

pub async fn run(global: &Global, args: &MailboxesArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let config = super::profile::read_config(&global.config, lang)?;
    let factory = super::profile::factory_of(&config, &args.profile, lang)?;
    let settings = &config.profiles[&args.profile].settings;
    let resolver = config.secret_resolver();
    let ctx = calpump_engine::source::ProfileContext {
        name: &args.profile,
        settings,
        secrets: &resolver,
    };
    let source: Arc<dyn Source> = factory.build(&ctx).map_err(|e| {
        CliError::usage(format!(
            "{} `{}`:\n{}",
            tr!(lang, "cannot use profile", "Profil nicht verwendbar:"),
            args.profile,
            e.diagnostic.render(lang)
        ))
    })?;
    let filter = args
        .filter
        .as_deref()
        .map(|f| f.trim().to_lowercase())
        .filter(|f| !f.is_empty());
    let filter = filter.as_deref();
    let limit = args.concurrency.max(1);

    // Room lists and their rooms.
    let (mut lists, lists_error) = match source.room_lists().await {
        Ok(lists) => (lists, None),
        Err(e) => (Vec::new(), Some(e.diagnostic)),
    };
    lists.sort_by(|a, b| a.name.cmp(&b.name).then(a.address.cmp(&b.address)));
    let rooms = bounded(
        lists.iter().map(|l| l.address.clone()).collect(),
        limit,
        |address: String| {
            let source = Arc::clone(&source);
            async move { source.rooms(Some(&address)).await }
        },
    )
    .await;
    let mut list_nodes: Vec<ListNode> = Vec::new();
    for (list, rooms) in lists.iter().zip(rooms) {
        let list_matches = matches(filter, list.name.as_deref(), &list.address);
        let (rooms, error) = match rooms {
            Ok(mut rooms) => {
                rooms.sort_by(|a, b| a.address.cmp(&b.address));
                (rooms, None)
            }
            Err(e) => (Vec::new(), Some(e.diagnostic)),
        };
        let shown: Vec<MailboxNode> = rooms
            .into_iter()
            .filter(|r| list_matches || matches(filter, r.name.as_deref(), &r.address))
            .map(|info| MailboxNode {
                info,
                routes: Vec::new(),
                calendars: None,
                error: None,
            })
            .collect();
        if list_matches || !shown.is_empty() {
            list_nodes.push(ListNode {
                address: list.address.clone(),
                name: list.name.clone(),
                rooms: shown,
                error,
            });
        }
    }

    // The routes' mailboxes.
    let mut configured: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for route in config.routes.iter().filter(|r| r.profile == args.profile) {
        for m in &route.mailboxes {
            configured
                .entry(m.trim().to_lowercase())
                .or_default()
                .push(route.name.clone());
        }
    }
    let resolved = bounded(
        configured.keys().cloned().collect(),
        limit,
        |address: String| {
            let source = Arc::clone(&source);
            async move {
                let r = source.resolve_mailbox(&address).await;
                (address, r)
            }
        },
    )
    .await;
    let mut configured_nodes: Vec<MailboxNode> = Vec::new();
    for (address, result) in resolved {
        let routes = configured.get(&address).cloned().unwrap_or_default();
        let node = match result {
            Ok(info) => MailboxNode {
                info,
                routes,
                calendars: None,
                error: None,
            },
            Err(e) => MailboxNode {
                info: MailboxInfo {
                    address: address.clone(),
                    name: None,
                    kind: MailboxKind::Unknown,
                    room_list: None,
                },
                routes,
                calendars: None,
                error: Some(e.diagnostic),
            },
        };
        if matches(filter, node.info.name.as_deref(), &node.info.address) {
            configured_nodes.push(node);
        }
    }

    // Calendars of every mailbox shown (once per address).
    let mut wanted: BTreeMap<String, MailboxInfo> = BTreeMap::new();
    for n in list_nodes
        .iter()
        .flat_map(|l| l.rooms.iter())
        .chain(configured_nodes.iter())
        .filter(|n| n.error.is_none())
    {
        wanted
            .entry(n.info.address.clone())
            .or_insert_with(|| n.info.clone());
    }
    let read = bounded(
        wanted.into_values().collect(),
        limit,
        |info: MailboxInfo| {
            let source = Arc::clone(&source);
            async move {
                let r: std::result::Result<Vec<CalendarInfo>, SourceError> =
                    source.calendars(&info).await;
                (info.address, r)
            }
        },
    )
    .await;
    let calendars: HashMap<String, std::result::Result<Vec<CalendarInfo>, Diagnostic>> = read
        .into_iter()
        .map(|(a, r)| (a, r.map_err(|e| e.diagnostic)))
        .collect();
    let fill = |n: &mut MailboxNode| {
        if n.error.is_some() {
            return;
        }
        match calendars.get(&n.info.address) {
            Some(Ok(c)) => n.calendars = Some(c.clone()),
            Some(Err(d)) => n.error = Some(d.clone()),
            None => {}
        }
    };
    for l in &mut list_nodes {
        l.rooms.iter_mut().for_each(fill);
    }
    configured_nodes.iter_mut().for_each(fill);

    let all: Vec<&MailboxNode> = list_nodes
        .iter()
        .flat_map(|l| l.rooms.iter())
        .chain(configured_nodes.iter())
        .collect();
    let addresses: BTreeSet<&str> = all.iter().map(|n| n.info.address.as_str()).collect();
    let unreadable: BTreeSet<&str> = all
        .iter()
        .filter(|n| n.error.is_some())
        .map(|n| n.info.address.as_str())
        .collect();
    let problems = unreadable.len()
        + usize::from(lists_error.is_some())
        + list_nodes.iter().filter(|l| l.error.is_some()).count();

    if args.json {
        let doc = json!({
            "profile": args.profile,
            "backend": factory.backend(),
            "filter": args.filter,
            "room_lists_error": lists_error.as_ref().map(|d| diag_json(d, lang)),
            "room_lists": list_nodes.iter().map(|l| json!({
                "address": l.address,
                "name": l.name,
                "error": l.error.as_ref().map(|d| diag_json(d, lang)),
                "rooms": l.rooms.iter().map(|n| node_json(n, lang)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "mailboxes": configured_nodes.iter().map(|n| node_json(n, lang)).collect::<Vec<_>>(),
            "summary": {
                "room_lists": list_nodes.len(),
                "mailboxes": addresses.len(),
                "unreadable": unreadable.len(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let mut out = String::new();
        out.push_str(&format!(
            "{} `{}` ({})",
            tr!(lang, "Mailboxes of profile", "Postfächer des Profils"),
            args.profile,
            factory.backend()
        ));
        if let Some(f) = &args.filter {
            out.push_str(&format!(" · {} \"{f}\"", tr!(lang, "filter", "Filter")));
        }
        out.push('\n');
        let mut lists_tree = Tree::leaf(tr!(lang, "Room lists", "Raumlisten").to_string());
        if let Some(d) = &lists_error {
            lists_tree.children.push(Tree::leaf(error_line(d, lang)));
        }
        for l in &list_nodes {
            let mut t = Tree::leaf(format!(
                "{} <{}> · {} {}",
                l.name.as_deref().unwrap_or(&l.address),
                l.address,
                l.rooms.len(),
                if l.rooms.len() == 1 {
                    tr!(lang, "room", "Raum")
                } else {
                    tr!(lang, "rooms", "Räume")
                }
            ));
            if let Some(d) = &l.error {
                t.children.push(Tree::leaf(error_line(d, lang)));
            }
            t.children
                .extend(l.rooms.iter().map(|n| mailbox_tree(n, lang)));
            lists_tree.children.push(t);
        }
        if lists_tree.children.is_empty() {
            lists_tree
                .children
                .push(Tree::leaf(tr!(lang, "(none)", "(keine)").to_string()));
        }
        lists_tree.render("", true, true, &mut out);
        let mut routes_tree =
            Tree::leaf(tr!(lang, "Mailboxes of the routes", "Postfächer der Routen").to_string());
        routes_tree
            .children
            .extend(configured_nodes.iter().map(|n| mailbox_tree(n, lang)));
        if routes_tree.children.is_empty() {
            routes_tree
                .children
                .push(Tree::leaf(tr!(lang, "(none)", "(keine)").to_string()));
        }
        routes_tree.render("", true, true, &mut out);
        out.push_str(&if unreadable.is_empty() {
            tr!(
                lang,
                format!("{} mailboxes, all readable.", addresses.len()),
                format!("{} Postfächer, alle lesbar.", addresses.len())
            )
        } else {
            tr!(
                lang,
                format!(
                    "{} mailboxes, {} of them can't be read (✗ above).",
                    addresses.len(),
                    unreadable.len()
                ),
                format!(
                    "{} Postfächer, {} davon nicht lesbar (✗ oben).",
                    addresses.len(),
                    unreadable.len()
                )
            )
        });
        out.push('\n');
        print!("{out}");
    }
    Ok(if problems > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
