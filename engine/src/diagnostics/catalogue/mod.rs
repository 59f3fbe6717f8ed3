//! The catalogue: one module per family, one `static` per entry. Add an entry to its family's
//! module and to that module's `ALL`; the tests below check every entry has both languages and a
//! unique code.

use super::DiagnosticInfo;

/// Declares one catalogue entry. `permission: true` marks a permission-type failure (consent,
/// roles, impersonation, mailbox scope) whose fix takes minutes to reach Exchange.
macro_rules! entry {
    ($name:ident, $code:literal, retryable: $retry:literal,
     en: { title: $t:expr, cause: $c:expr, remedy: $r:expr $(,)? },
     de: { title: $td:expr, cause: $cd:expr, remedy: $rd:expr $(,)? } $(,)?) => {
        entry!($name, $code, retryable: $retry, permission: false,
            en: { title: $t, cause: $c, remedy: $r },
            de: { title: $td, cause: $cd, remedy: $rd });
    };
    ($name:ident, $code:literal, retryable: $retry:literal, permission: $perm:literal,
     en: { title: $t:expr, cause: $c:expr, remedy: $r:expr $(,)? },
     de: { title: $td:expr, cause: $cd:expr, remedy: $rd:expr $(,)? } $(,)?) => {
        pub static $name: $crate::diagnostics::DiagnosticInfo =
            $crate::diagnostics::DiagnosticInfo {
                code: $code,
                retryable: $retry,
                permission: $perm,
                en: $crate::diagnostics::Texts {
                    title: $t,
                    cause: $c,
                    remedy: $r,
                },
                de: $crate::diagnostics::Texts {
                    title: $td,
                    cause: $cd,
                    remedy: $rd,
                },
            };
    };
}

pub mod entra;
pub mod ews;
pub mod general;
pub mod graph;
pub mod migrate;

/// Every entry, in catalogue order.
pub fn all() -> impl Iterator<Item = &'static DiagnosticInfo> {
    general::ALL
        .iter()
        .chain(entra::ALL)
        .chain(ews::ALL)
        .chain(graph::ALL)
        .chain(migrate::ALL)
        .copied()
}

/// Looks an entry up by its code (for codes read back from the state store).
pub fn lookup(code: &str) -> Option<&'static DiagnosticInfo> {
    all().find(|info| info.code == code)
}

/// Entra ID reports `AADSTSnnnn`; maps the number to its entry, or `entra.Other`.
pub fn entra_code(number: u32) -> &'static DiagnosticInfo {
    let code = format!("entra.AADSTS{number}");
    lookup(&code).unwrap_or(&entra::OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_unique_and_has_both_languages() {
        let mut seen = HashSet::new();
        for info in all() {
            assert!(seen.insert(info.code), "duplicate code {}", info.code);
            let family = info.code.split('.').next().unwrap_or_default();
            assert!(
                [
                    "general", "net", "http", "proto", "config", "secret", "sync", "sink",
                    "plugin", "entra", "ews", "graph"
                ]
                .contains(&family),
                "{} has an unknown family",
                info.code
            );
            for (lang, t) in [("en", &info.en), ("de", &info.de)] {
                assert!(
                    !t.title.trim().is_empty(),
                    "{} {lang}: empty title",
                    info.code
                );
                assert!(
                    t.cause.trim().len() > 20,
                    "{} {lang}: cause too thin",
                    info.code
                );
                assert!(
                    t.remedy.trim().len() > 20,
                    "{} {lang}: remedy too thin",
                    info.code
                );
                for link in [
                    "learn.microsoft",
                    "docs.microsoft",
                    "aka.ms",
                    "go.microsoft",
                ] {
                    assert!(
                        !t.remedy.contains(link),
                        "{} {lang}: remedies are link-free",
                        info.code
                    );
                }
            }
            assert_ne!(
                info.en.remedy, info.de.remedy,
                "{}: German text missing",
                info.code
            );
        }
        assert!(seen.len() >= 30);
    }

    #[test]
    fn entra_numbers_map_to_entries() {
        assert_eq!(entra_code(65001).code, "entra.AADSTS65001");
        assert_eq!(entra_code(7000215).code, "entra.AADSTS7000215");
        assert_eq!(entra_code(1).code, "entra.Other");
    }

    /// Where an identifier starting at `at` ends.
    fn ident_end(text: &str, at: usize) -> usize {
        text[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| at + n)
    }

    /// `(family, name)` for every `family::NAME` (Rust paths, `sep = "::"`) or `family.Name`
    /// (codes in text, `sep = "."`) in `text`, with a word boundary before the family.
    fn references<'a>(text: &'a str, families: &[&str], sep: &str) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        for family in families {
            let needle = format!("{family}{sep}");
            let mut from = 0;
            while let Some(pos) = text[from..].find(&needle) {
                let start = from + pos;
                from = start + needle.len();
                let boundary = text[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
                let name_at = start + needle.len();
                let first = text[name_at..].chars().next();
                if !boundary || !first.is_some_and(|c| c.is_ascii_uppercase()) {
                    continue;
                }
                let name = &text[name_at..ident_end(text, name_at)];
                out.push((family.to_string(), name));
            }
        }
        out
    }

    fn source_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    source_files(&path, out);
                }
            } else if name.ends_with(".rs") || name.ends_with(".md") {
                out.push(path);
            }
        }
    }

    /// Every `catalogue` entry named in the code of `backends/`, `engine/`, the binary (`src/`)
    /// and its tests exists — as a Rust path (`ews::IMPERSONATE_USER_DENIED`, after
    /// `use …::catalogue::{ews, …}`) or as a code in text (`"graph.MailboxOutOfScope"` in a
    /// test's assertion, a README or a comment).
    #[test]
    fn every_code_referenced_in_the_sources_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let mut files = Vec::new();
        for dir in ["backends", "engine", "src", "tests"] {
            source_files(&root.join(dir), &mut files);
        }
        assert!(
            files.len() > 20,
            "sources not found under {}",
            root.display()
        );
        // Declared statics, per module of the catalogue, read from its own files.
        let mut declared: std::collections::HashMap<String, HashSet<String>> = Default::default();
        let dir = root.join("engine/src/diagnostics/catalogue");
        let modules: Vec<String> = std::fs::read_dir(&dir)
            .expect("catalogue dir")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
            .filter(|n| n != "mod")
            .collect();
        assert!(modules.len() >= 4, "{modules:?}");
        for family in &modules {
            let path = dir.join(format!("{family}.rs"));
            let text = std::fs::read_to_string(&path).expect("catalogue file");
            let names = text
                .match_indices("entry!(")
                .map(|(at, m)| {
                    let at = at + m.len();
                    text[at..ident_end(&text, at)].to_string()
                })
                .chain(std::iter::once("ALL".to_string()))
                .collect();
            declared.insert(family.to_string(), names);
        }
        let mut missing = Vec::new();
        let mut seen_paths = 0;
        let mut seen_codes = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(file)
                .display()
                .to_string();
            if shown.ends_with(".rs") && text.contains("catalogue") {
                let families: Vec<&str> = modules.iter().map(String::as_str).collect();
                for (family, name) in references(&text, &families, "::") {
                    // Entries are statics (SCREAMING_CASE); `ews::EwsSource` is something else.
                    if name.chars().any(|c| c.is_ascii_lowercase()) {
                        continue;
                    }
                    seen_paths += 1;
                    if !declared[&family].contains(name) {
                        missing.push(format!("{shown}: {family}::{name}"));
                    }
                }
            }
            let families = [
                "general", "net", "http", "proto", "config", "secret", "sync", "sink", "plugin",
                "entra", "ews", "graph",
            ];
            for (family, name) in references(&text, &families, ".") {
                // Placeholders in prose and format strings: `entra.AADSTSnnnn`, `entra.AADSTS{n}`.
                let digits = name.strip_prefix("AADSTS").unwrap_or("1");
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                seen_codes += 1;
                let code = format!("{family}.{name}");
                if lookup(&code).is_none() {
                    missing.push(format!("{shown}: {code}"));
                }
            }
        }
        assert!(seen_paths > 50, "only {seen_paths} catalogue paths found");
        assert!(seen_codes > 50, "only {seen_codes} codes found");
        assert!(
            missing.is_empty(),
            "referenced but not in the catalogue:\n{}",
            missing.join("\n")
        );
    }

    /// The AADSTS codes the simulator's token endpoint answers with (simulator/src/auth/
    /// endpoint.rs) — each has its own entry, not `entra.Other`.
    #[test]
    fn the_token_errors_admins_meet_have_entries() {
        for number in [
            900144, 50196, 50000, 90002, 700016, 70003, 700025, 50027, 7000218, 7000215, 7000222,
            700027, 700024, 700021, 65001, 70011, 1002012, 28000, 50034, 50126, 50105, 50076,
            53003, 700082, 9002313, 70000, 500011, 50055, 50057, 50053, 50079, 50173, 7000112,
            7000229, 50128, 50158,
        ] {
            assert_eq!(
                entra_code(number).code,
                format!("entra.AADSTS{number}"),
                "AADSTS{number} has no entry"
            );
        }
    }

    /// Permission-type entries carry the replication note in both languages; others don't.
    #[test]
    fn permission_entries_say_that_changes_take_minutes() {
        let permission: Vec<&str> = all().filter(|i| i.permission).map(|i| i.code).collect();
        for code in [
            "entra.AADSTS65001",
            "entra.AADSTS50105",
            "ews.ErrorImpersonateUserDenied",
            "graph.ErrorAccessDenied",
            "graph.MailboxOutOfScope",
            "graph.NoPermissionsInToken",
        ] {
            assert!(permission.contains(&code), "{code} is not marked");
        }
        for info in all() {
            let note = info.replication_note(super::super::Lang::De);
            assert_eq!(note.is_some(), info.permission, "{}", info.code);
            if let Some(note) = note {
                assert!(note.contains("Minuten"));
                assert!(
                    info.replication_note(super::super::Lang::En)
                        .is_some_and(|n| n.contains("minutes"))
                );
            }
        }
        assert!(!lookup("entra.AADSTS7000215").expect("entry").permission);
    }
}
