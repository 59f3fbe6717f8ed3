//! The two languages of the admin-facing commands (`profile`, `mailboxes`, `check`'s expiry
//! lines): every line is written in English and German side by side with [`tr!`], so a missing
//! translation does not compile. `--lang` wins, then `LC_ALL`, `LC_MESSAGES`, `LANG`.

pub use calpump_engine::diagnostics::Lang;

/// `tr!(lang, "English", "Deutsch")` — both texts are required; works for `&str` and for
/// `format!(…)` values alike.
macro_rules! tr {
    ($lang:expr, $en:expr, $de:expr $(,)?) => {
        match $lang {
            $crate::i18n::Lang::En => $en,
            $crate::i18n::Lang::De => $de,
        }
    };
}
pub(crate) use tr;

/// "1 day" / "2 days", "1 Tag" / "2 Tage".
pub fn days(lang: Lang, n: i64) -> String {
    match (lang, n.abs() == 1) {
        (Lang::En, true) => format!("{n} day"),
        (Lang::En, false) => format!("{n} days"),
        (Lang::De, true) => format!("{n} Tag"),
        (Lang::De, false) => format!("{n} Tage"),
    }
}

/// The first sentence of a remedy (for one-line listings), with any backticked text kept whole.
pub fn first_sentence(text: &str) -> &str {
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code => {
                let rest = &text[i + 1..];
                if rest.is_empty() || rest.starts_with(' ') {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentences_keep_code_whole() {
        assert_eq!(
            first_sentence("Run `a. b` now. Then more."),
            "Run `a. b` now."
        );
        assert_eq!(first_sentence("No stop"), "No stop");
        assert_eq!(days(Lang::De, 1), "1 Tag");
        assert_eq!(days(Lang::En, -3), "-3 days");
    }
}
