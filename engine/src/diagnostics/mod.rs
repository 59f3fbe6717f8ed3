//! The diagnostics vocabulary: every failure an admin can meet has a stable code, a cause and a
//! remedy, in English and German.
//!
//! Backends never invent texts at the failure site: they pick an entry of the [`catalogue`] (a
//! `&'static DiagnosticInfo`, so a missing entry is a compile error) and attach the `detail` the
//! server gave (never a secret). The CLI, `/status` and the logs render the entry in the admin's
//! language.

pub mod catalogue;

use std::fmt;

use serde::Serialize;

/// The admin's language for rendered texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    /// From a `LANG`-style value (`de_DE.UTF-8` → German); anything else is English.
    pub fn from_locale(value: &str) -> Self {
        let lower = value.to_ascii_lowercase();
        if lower == "de" || lower.starts_with("de_") || lower.starts_with("de-") {
            Lang::De
        } else {
            Lang::En
        }
    }

    /// `--lang` wins, then `LC_ALL`, `LC_MESSAGES`, `LANG`.
    pub fn detect(explicit: Option<&str>) -> Self {
        if let Some(value) = explicit {
            return Self::from_locale(value);
        }
        for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Ok(value) = std::env::var(var)
                && !value.is_empty()
            {
                return Self::from_locale(&value);
            }
        }
        Lang::En
    }
}

/// The texts of one entry in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Texts {
    /// A short name of the problem.
    pub title: &'static str,
    /// Why it happens.
    pub cause: &'static str,
    /// What the admin does about it, step by step where needed, without links.
    pub remedy: &'static str,
}

/// One entry of the catalogue.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct DiagnosticInfo {
    /// Stable code, `family.Name` (`entra.AADSTS65001`, `ews.ErrorImpersonateUserDenied`).
    pub code: &'static str,
    /// Whether trying again later can succeed without the admin changing anything.
    pub retryable: bool,
    /// A permission-type failure (consent, roles, impersonation, mailbox scope, EWS access
    /// policy): the admin's fix takes minutes to reach Exchange, so right after a change the
    /// failure can persist for a while. `calpump profile test --wait` retries these.
    pub permission: bool,
    pub en: Texts,
    pub de: Texts,
}

impl DiagnosticInfo {
    pub fn texts(&self, lang: Lang) -> &Texts {
        match lang {
            Lang::En => &self.en,
            Lang::De => &self.de,
        }
    }

    /// For [`permission`](Self::permission) entries: the note that such changes take minutes
    /// to reach Exchange (shown after the remedy).
    pub fn replication_note(&self, lang: Lang) -> Option<&'static str> {
        if !self.permission {
            return None;
        }
        Some(match lang {
            Lang::En => {
                "Role, consent and access-policy changes take minutes (sometimes up to an hour) to reach Exchange. If you just changed it, wait and run `calpump profile test <profile> --wait`, which retries for up to 15 minutes."
            }
            Lang::De => {
                "Änderungen an Rollen, Zustimmungen und Zugriffsrichtlinien brauchen einige Minuten (manchmal bis zu einer Stunde), bis Exchange sie kennt. Wenn Sie gerade etwas geändert haben, warten Sie und führen Sie `calpump profile test <Profil> --wait` aus; es versucht es bis zu 15 Minuten lang erneut."
            }
        })
    }
}

/// A concrete failure: a catalogue entry plus what the server or the system said.
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic {
    info: &'static DiagnosticInfo,
    detail: String,
}

impl Diagnostic {
    /// `detail` is shown to the admin: what the server said, the URL, the mailbox — never a
    /// secret.
    pub fn new(info: &'static DiagnosticInfo, detail: impl Into<String>) -> Self {
        Self {
            info,
            detail: detail.into(),
        }
    }

    pub fn info(&self) -> &'static DiagnosticInfo {
        self.info
    }

    pub fn code(&self) -> &'static str {
        self.info.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Multi-line rendering for a terminal: title, detail, cause, remedy.
    pub fn render(&self, lang: Lang) -> String {
        let texts = self.info.texts(lang);
        let (cause, remedy) = match lang {
            Lang::En => ("Cause", "Remedy"),
            Lang::De => ("Ursache", "Abhilfe"),
        };
        let mut out = format!("[{}] {}", self.info.code, texts.title);
        if !self.detail.is_empty() {
            out.push_str(&format!("\n  {}", self.detail));
        }
        out.push_str(&format!(
            "\n  {cause}: {}\n  {remedy}: {}",
            texts.cause, texts.remedy
        ));
        if let Some(note) = self.info.replication_note(lang) {
            out.push_str(&format!("\n  {note}"));
        }
        out
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("code", &self.info.code)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.info.code, self.info.en.title)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Diagnostic", 7)?;
        s.serialize_field("code", self.info.code)?;
        s.serialize_field("title", self.info.en.title)?;
        s.serialize_field("detail", &self.detail)?;
        s.serialize_field("cause", self.info.en.cause)?;
        s.serialize_field("remedy", self.info.en.remedy)?;
        s.serialize_field("retryable", &self.info.retryable)?;
        s.serialize_field("permission", &self.info.permission)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_detection() {
        assert_eq!(Lang::from_locale("de_DE.UTF-8"), Lang::De);
        assert_eq!(Lang::from_locale("de"), Lang::De);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
        assert_eq!(Lang::detect(Some("de")), Lang::De);
    }

    #[test]
    fn rendering_names_code_cause_and_remedy_in_both_languages() {
        let d = Diagnostic::new(
            &catalogue::entra::AADSTS65001,
            "AADSTS65001: The user or administrator has not consented",
        );
        let en = d.render(Lang::En);
        assert!(en.starts_with("[entra.AADSTS65001]"));
        assert!(en.contains("Cause:") && en.contains("Remedy:"));
        let de = d.render(Lang::De);
        assert!(de.contains("Ursache:") && de.contains("Abhilfe:"));
        let json = serde_json::to_value(&d).expect("json");
        assert_eq!(json["code"], "entra.AADSTS65001");
    }
}
