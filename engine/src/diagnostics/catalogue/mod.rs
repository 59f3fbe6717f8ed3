//! The catalogue: one module per family, one `static` per entry. Add an entry to its family's
//! module and to that module's `ALL`; the tests below check every entry has both languages and a
//! unique code.

use super::DiagnosticInfo;

/// Declares one catalogue entry.
macro_rules! entry {
    ($name:ident, $code:literal, retryable: $retry:literal,
     en: { title: $t:expr, cause: $c:expr, remedy: $r:expr $(,)? },
     de: { title: $td:expr, cause: $cd:expr, remedy: $rd:expr $(,)? } $(,)?) => {
        pub static $name: $crate::diagnostics::DiagnosticInfo =
            $crate::diagnostics::DiagnosticInfo {
                code: $code,
                retryable: $retry,
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

/// Every entry, in catalogue order.
pub fn all() -> impl Iterator<Item = &'static DiagnosticInfo> {
    general::ALL
        .iter()
        .chain(entra::ALL)
        .chain(ews::ALL)
        .chain(graph::ALL)
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
}
