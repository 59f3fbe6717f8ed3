//! `docs/reference/diagnostics.md` and `diagnostics.de.md`: every entry of the catalogue
//! (`calpump_engine::diagnostics::catalogue::all()`), as the CLI and `/status` show it.

use calpump_engine::diagnostics::{DiagnosticInfo, Lang, catalogue};

use crate::md;

struct Words {
    title: &'static str,
    intro: &'static str,
    families: &'static str,
    cause: &'static str,
    remedy: &'static str,
    retryable: &'static str,
    yes: &'static str,
    no: &'static str,
    permission: &'static str,
    code: &'static str,
    name: &'static str,
}

const EN: Words = Words {
    title: "Diagnostics reference",
    intro: "Every failure calpump reports has a stable code, a cause and a remedy. `calpump check`, `calpump profile test`, `calpump sync`, the daemon's `/status` and its logs name the code; the metric `calpump_errors_total{code}` counts them. \
**Retryable** says whether trying again later can succeed without anyone changing anything (calpump retries those by itself). \
The German texts are in [diagnostics.de.md](diagnostics.de.md); `--lang de` shows them on the command line.",
    families: "Families",
    cause: "Cause",
    remedy: "Remedy",
    retryable: "Retryable",
    yes: "yes",
    no: "no",
    permission: "Permission change",
    code: "code",
    name: "title",
};

const DE: Words = Words {
    title: "Diagnose-Referenz",
    intro: "Jeder Fehler, den calpump meldet, hat einen festen Code, eine Ursache und eine Abhilfe. `calpump check`, `calpump profile test`, `calpump sync`, `/status` des Dienstes und seine Protokolle nennen den Code; die Metrik `calpump_errors_total{code}` zählt sie. \
**Wiederholbar** sagt, ob ein späterer Versuch ohne Änderung gelingen kann (solche Fehler wiederholt calpump selbst). \
Die englischen Texte stehen in [diagnostics.md](diagnostics.md); `--lang de` zeigt auf der Befehlszeile die deutschen.",
    families: "Familien",
    cause: "Ursache",
    remedy: "Abhilfe",
    retryable: "Wiederholbar",
    yes: "ja",
    no: "nein",
    permission: "Berechtigungsänderung",
    code: "Code",
    name: "Titel",
};

fn family_title(family: &str, lang: Lang) -> &'static str {
    match (family, lang) {
        ("general", Lang::En) => "general",
        ("general", Lang::De) => "allgemein",
        ("net", Lang::En) => "network and TLS",
        ("net", Lang::De) => "Netzwerk und TLS",
        ("http", _) => "HTTP",
        ("proto", Lang::En) => "protocol",
        ("proto", Lang::De) => "Protokoll",
        ("config", Lang::En) => "configuration",
        ("config", Lang::De) => "Konfiguration",
        ("secret", Lang::En) => "secrets",
        ("secret", Lang::De) => "Geheimnisse",
        ("sync", _) => "sync",
        ("sink", _) => "sinks",
        ("plugin", _) => "plugins",
        ("entra", Lang::En) => "Microsoft Entra ID (sign-in)",
        ("entra", Lang::De) => "Microsoft Entra ID (Anmeldung)",
        ("ews", _) => "EWS",
        ("graph", _) => "Microsoft Graph",
        _ => "other",
    }
}

/// The page in one language.
pub fn render(lang: Lang) -> String {
    let w = match lang {
        Lang::En => &EN,
        Lang::De => &DE,
    };
    let entries: Vec<&'static DiagnosticInfo> = catalogue::all().collect();
    let mut families: Vec<&str> = Vec::new();
    for info in &entries {
        let family = info.code.split('.').next().unwrap_or_default();
        if !families.contains(&family) {
            families.push(family);
        }
    }
    let mut out =
        md::generated_note("the diagnostics catalogue (`engine/src/diagnostics/catalogue/`)");
    out.push_str(&format!("# {}\n\n{}\n\n", w.title, w.intro));
    out.push_str(&format!("## {}\n\n", w.families));
    for family in &families {
        let codes: Vec<String> = entries
            .iter()
            .filter(|i| i.code.split('.').next() == Some(family))
            .map(|i| format!("[`{}`](#{})", i.code, anchor(i.code)))
            .collect();
        out.push_str(&format!(
            "- **{}** (`{family}.…`): {}\n",
            family_title(family, lang),
            codes.join(", ")
        ));
    }
    out.push('\n');
    for family in &families {
        out.push_str(&format!(
            "## {} (`{family}`)\n\n",
            family_title(family, lang)
        ));
        out.push_str(&format!(
            "| {} | {} | {} |\n|---|---|---|\n",
            w.code, w.name, w.retryable
        ));
        let in_family: Vec<&&DiagnosticInfo> = entries
            .iter()
            .filter(|i| i.code.split('.').next() == Some(family))
            .collect();
        for info in &in_family {
            out.push_str(&format!(
                "| [`{}`](#{}) | {} | {} |\n",
                info.code,
                anchor(info.code),
                md::cell(info.texts(lang).title),
                if info.retryable { w.yes } else { w.no }
            ));
        }
        out.push('\n');
        for info in in_family {
            let t = info.texts(lang);
            out.push_str(&format!(
                "<a id=\"{}\"></a>\n\n### `{}` — {}\n\n",
                anchor(info.code),
                info.code,
                t.title
            ));
            out.push_str(&format!(
                "**{}:** {}",
                w.retryable,
                if info.retryable { w.yes } else { w.no }
            ));
            if info.permission {
                out.push_str(&format!(" · **{}:** {}", w.permission, w.yes));
            }
            out.push_str("\n\n");
            out.push_str(&format!("**{}:** {}\n\n", w.cause, t.cause));
            out.push_str(&format!("**{}:** {}\n\n", w.remedy, t.remedy));
            if let Some(note) = info.replication_note(lang) {
                out.push_str(&format!("> {note}\n\n"));
            }
        }
    }
    out
}

/// The anchor of a code: lower case, dots kept (`entra.aadsts65001`).
pub fn anchor(code: &str) -> String {
    code.to_ascii_lowercase()
}
