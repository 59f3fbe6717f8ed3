//! `calpump profile add`: a walk-through on a terminal, or the same with flags for scripts.
//!
//! It asks only what the chosen backend needs — Graph: tenant, client id, secret or certificate
//! and key, expiry date, and only under "advanced" the sign-in host and Graph URL; EWS
//! on-premises: the EWS URL or an Autodiscover address, NTLM or Basic, user, password,
//! impersonation; EWS Exchange Online: the OAuth settings — stores secrets encrypted
//! (`{ encrypted = "cp1:…" }` with the key file, created if missing), checks the profile
//! offline, tests the connection (as `profile test`), and writes the profile into the
//! configuration with `toml_edit`, so comments and layout of the rest stay as they were. An
//! existing profile is replaced only with `--force` (or after a "replace?" question; a no asks
//! for another name).
//!
//! Flags and questions are the same answers: every answer a flag gives is not asked. Without a
//! terminal, missing answers are a usage error naming the flags.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::process::ExitCode;

use calpump_backend_common::oauth::cert::ClientCertificate;
use calpump_engine::config::{Config, ConfigIssue, ProfileConfig};
use calpump_engine::diagnostics::Lang;
use calpump_engine::secret::{Secret, SecretResolver};
use calpump_engine::source::ProfileContext;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value, value};

use crate::cli::{Global, ProfileAddArgs};
use crate::error::{CliError, Result};
use crate::i18n::tr;

/// The three kinds of connection the walk-through knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Graph,
    EwsOnPrem,
    EwsOnline,
}

/// Where a secret goes in the profile.
enum SecretValue {
    /// `{ encrypted = "cp1:…" }`
    Encrypted(String),
    /// `{ env = "VAR" }`
    Env(String),
}

impl SecretValue {
    fn item(&self) -> Value {
        let mut t = InlineTable::new();
        match self {
            SecretValue::Encrypted(v) => t.insert("encrypted", v.as_str().into()),
            SecretValue::Env(v) => t.insert("env", v.as_str().into()),
        };
        Value::InlineTable(t)
    }
}

/// Asks a question, or takes the flag's answer, or records the flag as missing.
struct Asker<'a> {
    interactive: bool,
    lang: Lang,
    args: &'a ProfileAddArgs,
    missing: Vec<&'static str>,
    resolver: SecretResolver,
    stdin_secret_used: bool,
    /// A route using the profile's name names a mailbox (the default probe mailbox).
    route_mailbox: bool,
}

type Validator = fn(&str, Lang) -> std::result::Result<(), String>;

fn cancelled(e: dialoguer::Error, lang: Lang) -> CliError {
    CliError::failure(tr!(
        lang,
        format!("profile add cancelled, nothing written: {e}"),
        format!("profile add abgebrochen, nichts geschrieben: {e}")
    ))
}

fn not_empty(v: &str, lang: Lang) -> std::result::Result<(), String> {
    if v.trim().is_empty() {
        Err(tr!(lang, "an answer is needed", "eine Antwort ist nötig").to_string())
    } else {
        Ok(())
    }
}

fn profile_name(v: &str, lang: Lang) -> std::result::Result<(), String> {
    let v = v.trim();
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Err(tr!(
            lang,
            "letters, digits, - and _ only",
            "nur Buchstaben, Ziffern, - und _"
        )
        .to_string())
    } else {
        Ok(())
    }
}

fn tenant(v: &str, lang: Lang) -> std::result::Result<(), String> {
    let v = v.trim();
    if v.is_empty() || v.contains('/') || v.contains(char::is_whitespace) {
        Err(tr!(
            lang,
            "a tenant id or domain (contoso.onmicrosoft.com), without slashes or spaces",
            "eine Mandanten-ID oder Domäne (contoso.onmicrosoft.com), ohne Schrägstriche und Leerzeichen"
        )
        .to_string())
    } else {
        Ok(())
    }
}

fn url(v: &str, lang: Lang) -> std::result::Result<(), String> {
    let v = v.trim();
    if v.starts_with("https://") || v.starts_with("http://") {
        Ok(())
    } else {
        Err(tr!(
            lang,
            "a URL starting with https://",
            "eine URL mit https:// am Anfang"
        )
        .to_string())
    }
}

fn address(v: &str, lang: Lang) -> std::result::Result<(), String> {
    if calpump_plugin::normalize_mailbox(v.trim()).is_ok() {
        Ok(())
    } else {
        Err(tr!(lang, "an e-mail address", "eine E-Mail-Adresse").to_string())
    }
}

fn optional_address(v: &str, lang: Lang) -> std::result::Result<(), String> {
    if v.trim().is_empty() {
        Ok(())
    } else {
        address(v, lang)
    }
}

fn date(v: &str, lang: Lang) -> std::result::Result<(), String> {
    let v = v.trim();
    if v.is_empty() || chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
        Ok(())
    } else {
        Err(tr!(lang, "a date like 2027-03-19", "ein Datum wie 2027-03-19").to_string())
    }
}

fn readable_certificate(v: &str, _lang: Lang) -> std::result::Result<(), String> {
    ClientCertificate::load(Path::new(v.trim()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn existing_file(v: &str, lang: Lang) -> std::result::Result<(), String> {
    if Path::new(v.trim()).is_file() {
        Ok(())
    } else {
        Err(tr!(lang, "no such file", "keine solche Datei").to_string())
    }
}

impl Asker<'_> {
    /// A text answer. `required`: without a flag and without a terminal, the flag is missing.
    fn text(
        &mut self,
        flag: Option<&str>,
        flag_name: &'static str,
        prompt: &str,
        default: Option<&str>,
        required: bool,
        validate: Validator,
    ) -> Result<Option<String>> {
        if let Some(v) = flag {
            validate(v, self.lang).map_err(|e| CliError::usage(format!("{flag_name}: {e}")))?;
            return Ok(Some(v.trim().to_string()).filter(|v| !v.is_empty()));
        }
        if !self.interactive {
            if required && default.is_none() {
                self.missing.push(flag_name);
            }
            return Ok(default.map(str::to_string));
        }
        let lang = self.lang;
        let mut input = dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .allow_empty(!required)
            .validate_with(move |v: &String| validate(v, lang));
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        let answer = input.interact_text().map_err(|e| cancelled(e, lang))?;
        Ok(Some(answer.trim().to_string()).filter(|v| !v.is_empty()))
    }

    /// One of `options` (index), from the flag's value when given.
    fn choose(
        &mut self,
        from_flag: Option<usize>,
        flag_name: &'static str,
        prompt: &str,
        options: &[&str],
    ) -> Result<Option<usize>> {
        if let Some(i) = from_flag {
            return Ok(Some(i));
        }
        if !self.interactive {
            self.missing.push(flag_name);
            return Ok(None);
        }
        dialoguer::Select::new()
            .with_prompt(prompt)
            .items(options)
            .default(0)
            .interact()
            .map(Some)
            .map_err(|e| cancelled(e, self.lang))
    }

    fn confirm(&mut self, flag: Option<bool>, prompt: &str, default: bool) -> Result<bool> {
        if let Some(v) = flag {
            return Ok(v);
        }
        if !self.interactive {
            return Ok(default);
        }
        dialoguer::Confirm::new()
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()
            .map_err(|e| cancelled(e, self.lang))
    }

    /// The secret (client secret or password): `--secret-stdin` (encrypted), `--secret-env`
    /// (a reference), or a hidden prompt (encrypted).
    fn secret(&mut self, prompt: &str) -> Result<Option<SecretValue>> {
        if let Some(var) = &self.args.secret_env {
            return Ok(Some(SecretValue::Env(var.clone())));
        }
        let plain = if self.args.secret_stdin {
            if self.stdin_secret_used {
                return Err(CliError::usage(tr!(
                    self.lang,
                    "--secret-stdin gives one secret; this profile needs a second one",
                    "--secret-stdin liefert ein Geheimnis; dieses Profil braucht ein zweites"
                )));
            }
            self.stdin_secret_used = true;
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|e| {
                CliError::failure(tr!(
                    self.lang,
                    format!("cannot read the secret from stdin: {e}"),
                    format!("das Geheimnis ist von der Standardeingabe nicht lesbar: {e}")
                ))
            })?;
            let value = input
                .strip_suffix("\r\n")
                .or_else(|| input.strip_suffix('\n'))
                .unwrap_or(&input)
                .to_string();
            input.clear();
            Secret::new(value)
        } else if self.interactive {
            let value = dialoguer::Password::new()
                .with_prompt(prompt)
                .interact()
                .map_err(|e| cancelled(e, self.lang))?;
            Secret::new(value)
        } else {
            self.missing.push("--secret-stdin or --secret-env");
            return Ok(None);
        };
        if plain.expose().is_empty() {
            return Err(CliError::usage(tr!(
                self.lang,
                "the secret is empty",
                "das Geheimnis ist leer"
            )));
        }
        if self
            .resolver
            .ensure_key_file()
            .map_err(|e| CliError::failure(e.to_string()))?
        {
            eprintln!(
                "{} {} (mode 0600)",
                tr!(
                    self.lang,
                    "created the key file for encrypted secrets:",
                    "Schlüsseldatei für verschlüsselte Geheimnisse angelegt:"
                ),
                self.resolver.key_file().display()
            );
        }
        let sealed = self
            .resolver
            .encrypt(&plain)
            .map_err(|e| CliError::failure(e.to_string()))?;
        Ok(Some(SecretValue::Encrypted(sealed)))
    }

    fn fail_if_missing(&self) -> Result<()> {
        if self.missing.is_empty() {
            return Ok(());
        }
        Err(CliError::usage(format!(
            "{} {}{}",
            tr!(
                self.lang,
                "missing for profile add without a terminal:",
                "für profile add ohne Terminal fehlt:"
            ),
            self.missing.join(", "),
            tr!(
                self.lang,
                " (or run it in a terminal for the walk-through)",
                " (oder im Terminal für den geführten Dialog starten)"
            )
        )))
    }
}

/// The OAuth part shared by Graph and EWS Online, written into `table`.
fn oauth_answers(ask: &mut Asker<'_>, table: &mut Table, kind: Kind) -> Result<()> {
    let lang = ask.lang;
    let args = ask.args;
    if let Some(t) = ask.text(
        args.tenant.as_deref(),
        "--tenant",
        tr!(
            lang,
            "Tenant (primary domain or directory id)",
            "Mandant (primäre Domäne oder Verzeichnis-ID)"
        ),
        None,
        true,
        tenant,
    )? {
        table.insert("tenant", value(t));
    }
    if let Some(c) = ask.text(
        args.client_id.as_deref(),
        "--client-id",
        tr!(
            lang,
            "Application (client) ID of the app registration",
            "Anwendungs-ID (Client) der App-Registrierung"
        ),
        None,
        true,
        not_empty,
    )? {
        table.insert("client_id", value(c));
    }
    // EWS Online: client credentials or the password grant.
    let password_grant = if kind == Kind::EwsOnline {
        let flag = if args.username.is_some() {
            Some(1)
        } else if args.tenant.is_some() || args.certificate.is_some() || !ask.interactive {
            Some(0)
        } else {
            None
        };
        ask.choose(
            flag,
            "--username",
            tr!(
                lang,
                "How does calpump sign in?",
                "Wie meldet sich calpump an?"
            ),
            &[
                tr!(
                    lang,
                    "client credentials (application permission full_access_as_app)",
                    "Client-Anmeldeinformationen (Anwendungsberechtigung full_access_as_app)"
                ),
                tr!(
                    lang,
                    "password grant of a service account (delegated EWS.AccessAsUser.All)",
                    "Kennwort-Grant eines Dienstkontos (delegiert EWS.AccessAsUser.All)"
                ),
            ],
        )? == Some(1)
    } else {
        false
    };
    if password_grant {
        if let Some(u) = ask.text(
            args.username.as_deref(),
            "--username",
            tr!(lang, "Service account (UPN)", "Dienstkonto (UPN)"),
            None,
            true,
            address,
        )? {
            table.insert("username", value(u));
        }
        if let Some(s) = ask.secret(tr!(lang, "Its password", "Sein Kennwort"))? {
            table.insert("password", value(s.item()));
        }
    } else {
        let flag = if args.certificate.is_some() {
            Some(1)
        } else if args.secret_stdin || args.secret_env.is_some() || !ask.interactive {
            Some(0)
        } else {
            None
        };
        let certificate = ask.choose(
            flag,
            "--secret-stdin or --certificate",
            tr!(lang, "Credential", "Anmeldeinformation"),
            &[
                tr!(lang, "client secret", "Client-Geheimnis"),
                tr!(
                    lang,
                    "certificate and private key",
                    "Zertifikat und privater Schlüssel"
                ),
            ],
        )? == Some(1);
        if certificate {
            if let Some(path) = ask.text(
                args.certificate.as_deref(),
                "--certificate",
                tr!(
                    lang,
                    "PEM certificate file (the one uploaded to the app)",
                    "PEM-Zertifikatsdatei (die in der App hochgeladene)"
                ),
                None,
                true,
                readable_certificate,
            )? {
                if let Ok(cert) = ClientCertificate::load(Path::new(&path)) {
                    eprintln!(
                        "{} {} ({} {})",
                        tr!(lang, "certificate", "Zertifikat"),
                        cert.describe(),
                        tr!(lang, "valid until", "gültig bis"),
                        cert.not_after().format("%Y-%m-%d")
                    );
                }
                table.insert("certificate", value(path));
            }
            if let Some(key) = ask.text(
                args.private_key.as_deref(),
                "--private-key",
                tr!(
                    lang,
                    "Its PEM private key file",
                    "Dessen PEM-Datei mit dem privaten Schlüssel"
                ),
                None,
                true,
                existing_file,
            )? {
                let mut t = InlineTable::new();
                t.insert("file", key.as_str().into());
                table.insert("private_key", value(Value::InlineTable(t)));
            }
        } else if let Some(s) = ask.secret(tr!(
            lang,
            "Client secret (its Value, not the Secret ID)",
            "Client-Geheimnis (der Wert, nicht die Geheimnis-ID)"
        ))? {
            table.insert("client_secret", value(s.item()));
        }
    }
    Ok(())
}

fn expiry_answer(
    ask: &mut Asker<'_>,
    table: &mut Table,
    what_en: &str,
    what_de: &str,
) -> Result<()> {
    let lang = ask.lang;
    let prompt = tr!(
        lang,
        format!("When does the {what_en} expire? (YYYY-MM-DD, empty: don't warn)"),
        format!("Wann läuft {what_de} ab? (JJJJ-MM-TT, leer: keine Warnung)")
    );
    if let Some(d) = ask.text(
        ask.args.secret_expires.as_deref(),
        "--secret-expires",
        &prompt,
        None,
        false,
        date,
    )? && let Ok(dt) = d.parse::<toml_edit::Datetime>()
    {
        table.insert("secret_expires", value(dt));
    }
    Ok(())
}

fn probe_answer(ask: &mut Asker<'_>, table: &mut Table, required: bool) -> Result<()> {
    let lang = ask.lang;
    // A route's first mailbox serves as the probe mailbox when none is given.
    let required = required && !ask.route_mailbox;
    if let Some(p) = ask.text(
        ask.args.probe_mailbox.as_deref(),
        "--probe-mailbox",
        tr!(
            lang,
            "A mailbox to test with, e.g. a room (empty: none)",
            "Ein Postfach zum Testen, z. B. ein Raum (leer: keines)"
        ),
        None,
        required,
        optional_address,
    )? {
        table.insert("probe_mailbox", value(p.to_lowercase()));
    }
    Ok(())
}

/// Every answer, as the profile table (without the document's decor).
fn answers(ask: &mut Asker<'_>, kind: Kind) -> Result<Table> {
    let lang = ask.lang;
    let args = ask.args;
    let mut table = Table::new();
    match kind {
        Kind::Graph => {
            table.insert("backend", value("graph"));
            oauth_answers(ask, &mut table, kind)?;
            if !table.contains_key("certificate") {
                expiry_answer(ask, &mut table, "client secret", "das Client-Geheimnis")?;
            }
            let advanced = args.authority.is_some()
                || args.graph_url.is_some()
                || ask.confirm(
                    None,
                    tr!(
                        lang,
                        "Change advanced settings (sign-in host, Graph URL — national clouds, the simulator)?",
                        "Erweiterte Einstellungen ändern (Anmeldehost, Graph-URL — nationale Clouds, der Simulator)?"
                    ),
                    false,
                )?;
            if advanced {
                if let Some(a) = ask.text(
                    args.authority.as_deref(),
                    "--authority",
                    tr!(lang, "Sign-in host", "Anmeldehost"),
                    Some("https://login.microsoftonline.com"),
                    false,
                    url,
                )? && a != "https://login.microsoftonline.com"
                {
                    table.insert("authority", value(a));
                }
                if let Some(g) = ask.text(
                    args.graph_url.as_deref(),
                    "--graph-url",
                    tr!(lang, "Graph URL", "Graph-URL"),
                    Some("https://graph.microsoft.com/v1.0"),
                    false,
                    url,
                )? && g != "https://graph.microsoft.com/v1.0"
                {
                    table.insert("graph_url", value(g));
                }
            }
            probe_answer(ask, &mut table, false)?;
        }
        Kind::EwsOnPrem => {
            table.insert("backend", value("ews"));
            let flag = if args.url.is_some() {
                Some(0)
            } else if args.autodiscover.is_some() {
                Some(1)
            } else {
                None
            };
            let autodiscover = ask.choose(
                flag,
                "--url or --autodiscover",
                tr!(
                    lang,
                    "How is the EWS endpoint found?",
                    "Wie wird der EWS-Endpunkt gefunden?"
                ),
                &[
                    tr!(
                        lang,
                        "I know the EWS URL (https://mail.example.com/EWS/Exchange.asmx)",
                        "Ich kenne die EWS-URL (https://mail.example.com/EWS/Exchange.asmx)"
                    ),
                    tr!(
                        lang,
                        "Autodiscover for an e-mail address",
                        "Autodiscover für eine E-Mail-Adresse"
                    ),
                ],
            )? == Some(1);
            if autodiscover {
                if let Some(a) = ask.text(
                    args.autodiscover.as_deref(),
                    "--autodiscover",
                    tr!(
                        lang,
                        "E-mail address for Autodiscover",
                        "E-Mail-Adresse für Autodiscover"
                    ),
                    None,
                    true,
                    address,
                )? {
                    table.insert("autodiscover", value(a));
                }
            } else if let Some(u) = ask.text(
                args.url.as_deref(),
                "--url",
                tr!(lang, "EWS URL", "EWS-URL"),
                None,
                true,
                url,
            )? {
                table.insert("url", value(u));
            }
            let flag = match args.auth.as_deref() {
                Some("ntlm") => Some(0),
                Some("basic") => Some(1),
                _ => None,
            };
            let basic = ask.choose(
                flag,
                "--auth",
                tr!(lang, "Authentication", "Authentifizierung"),
                &["NTLM", "Basic"],
            )? == Some(1);
            let mut auth = InlineTable::new();
            auth.insert("kind", if basic { "basic" } else { "ntlm" }.into());
            if let Some(u) = ask.text(
                args.username.as_deref(),
                "--username",
                tr!(
                    lang,
                    "Service account (DOMAIN\\user or UPN)",
                    "Dienstkonto (DOMÄNE\\benutzer oder UPN)"
                ),
                None,
                true,
                not_empty,
            )? {
                auth.insert("username", u.as_str().into());
            }
            if let Some(s) = ask.secret(tr!(lang, "Its password", "Sein Kennwort"))? {
                auth.insert("password", s.item());
            }
            table.insert("auth", value(Value::InlineTable(auth)));
            let impersonation = ask.confirm(
                args.impersonation,
                tr!(
                    lang,
                    "Use impersonation (the account holds ApplicationImpersonation)?",
                    "Identitätswechsel verwenden (das Konto hat ApplicationImpersonation)?"
                ),
                true,
            )?;
            table.insert("impersonation", value(impersonation));
            expiry_answer(ask, &mut table, "password", "das Kennwort")?;
            if autodiscover
                && (args.autodiscover_url.is_some()
                    || ask.confirm(
                        None,
                        tr!(
                            lang,
                            "Change advanced settings (an Autodiscover endpoint to try first)?",
                            "Erweiterte Einstellungen ändern (ein zuerst zu fragender Autodiscover-Endpunkt)?"
                        ),
                        false,
                    )?)
                && let Some(u) = ask.text(
                    args.autodiscover_url.as_deref(),
                    "--autodiscover-url",
                    tr!(lang, "Autodiscover endpoint", "Autodiscover-Endpunkt"),
                    None,
                    false,
                    url,
                )?
            {
                table.insert("autodiscover_url", value(u));
            }
            probe_answer(ask, &mut table, impersonation)?;
        }
        Kind::EwsOnline => {
            table.insert("backend", value("ews"));
            let mut oauth = Table::new();
            oauth_answers(ask, &mut oauth, kind)?;
            let app_only = !oauth.contains_key("username");
            let advanced = args.authority.is_some()
                || args.url.is_some()
                || ask.confirm(
                    None,
                    tr!(
                        lang,
                        "Change advanced settings (sign-in host, EWS URL — national clouds, the simulator)?",
                        "Erweiterte Einstellungen ändern (Anmeldehost, EWS-URL — nationale Clouds, der Simulator)?"
                    ),
                    false,
                )?;
            let mut auth = InlineTable::new();
            auth.insert("kind", "oauth".into());
            for (k, v) in oauth.iter() {
                if let Some(v) = v.as_value() {
                    auth.insert(k, v.clone());
                }
            }
            if advanced {
                if let Some(a) = ask.text(
                    args.authority.as_deref(),
                    "--authority",
                    tr!(lang, "Sign-in host", "Anmeldehost"),
                    Some("https://login.microsoftonline.com"),
                    false,
                    url,
                )? && a != "https://login.microsoftonline.com"
                {
                    auth.insert("authority", a.as_str().into());
                }
                if let Some(u) = ask.text(
                    args.url.as_deref(),
                    "--url",
                    tr!(lang, "EWS URL", "EWS-URL"),
                    Some("https://outlook.office365.com/EWS/Exchange.asmx"),
                    false,
                    url,
                )? && u != "https://outlook.office365.com/EWS/Exchange.asmx"
                {
                    table.insert("url", value(u));
                }
            }
            table.insert("auth", value(Value::InlineTable(auth)));
            if !oauth.contains_key("certificate") {
                expiry_answer(
                    ask,
                    &mut table,
                    if app_only {
                        "client secret"
                    } else {
                        "password"
                    },
                    if app_only {
                        "das Client-Geheimnis"
                    } else {
                        "das Kennwort"
                    },
                )?;
            }
            // App-only tokens impersonate; the probe mailbox is also what directory calls use.
            probe_answer(ask, &mut table, app_only)?;
        }
    }
    Ok(table)
}

/// Whether `table` is written with a `[header]` of its own (not implicit, not dotted).
fn has_header(table: &Table) -> bool {
    !table.is_implicit() && !table.is_dotted()
}

/// The positions of the tables with a header under `table`, at any depth.
fn positions(table: &Table, out: &mut Vec<isize>) {
    for (_, item) in table.iter() {
        let subs: Vec<&Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(a) => a.iter().collect(),
            _ => continue,
        };
        for sub in subs {
            if has_header(sub)
                && let Some(p) = sub.position()
            {
                out.push(p);
            }
            positions(sub, out);
        }
    }
}

/// The table with a header at `position`, at any depth under `table`.
fn table_at(table: &mut Table, position: isize) -> Option<&mut Table> {
    for (_, item) in table.iter_mut() {
        let subs: Vec<&mut Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(a) => a.iter_mut().collect(),
            _ => continue,
        };
        for sub in subs {
            if has_header(sub) && sub.position() == Some(position) {
                return Some(sub);
            }
            if let Some(found) = table_at(sub, position) {
                return Some(found);
            }
        }
    }
    None
}

/// Takes the comment lines right below the last profile's keys (up to the first blank line):
/// they belong to that profile — in `calpump init`'s starter, its commented-out keys — but
/// toml_edit keeps them in front of the table that follows, or in the document's trailing
/// text, so a profile added after the last one would land between it and its comments.
fn take_trailing_comments(doc: &mut DocumentMut) -> String {
    let mut profile_positions = Vec::new();
    if let Some(profiles) = doc.get("profiles").and_then(Item::as_table) {
        if has_header(profiles)
            && let Some(p) = profiles.position()
        {
            profile_positions.push(p);
        }
        positions(profiles, &mut profile_positions);
    }
    let Some(last) = profile_positions.into_iter().max() else {
        return String::new();
    };
    let mut all = Vec::new();
    positions(doc.as_table(), &mut all);
    // The lines of a text before its first blank line, and the rest (which starts with it).
    // Without a blank line, in front of a table the lines may as well be that table's: they
    // stay.
    let split = |text: &str, whole: bool| -> Option<(String, String)> {
        if text.starts_with('\n') || text.trim().is_empty() {
            return None;
        }
        let at = match text.find("\n\n") {
            Some(i) => i + 1,
            None if whole => text.len(),
            None => return None,
        };
        Some((text[..at].to_string(), text[at..].to_string()))
    };
    match all.into_iter().filter(|p| *p > last).min() {
        Some(next) => {
            let Some(table) = table_at(doc.as_table_mut(), next) else {
                return String::new();
            };
            let prefix = table
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_string();
            let Some((taken, rest)) = split(&prefix, false) else {
                return String::new();
            };
            table.decor_mut().set_prefix(rest);
            taken
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
            let Some((taken, rest)) = split(&trailing, true) else {
                return String::new();
            };
            doc.set_trailing(rest);
            taken
        }
    }
}

/// Writes `profile` as `[profiles.<name>]` into the document: a new profile right after the
/// last existing one (and the comments right below it), a replaced one where the old one was
/// (with its comments).
fn place_profile(doc: &mut DocumentMut, name: &str, mut profile: Table) -> Result<()> {
    let replacing = doc
        .get("profiles")
        .and_then(Item::as_table)
        .is_some_and(|p| p.contains_key(name));
    let carried = if replacing {
        String::new()
    } else {
        take_trailing_comments(doc)
    };
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| {
            CliError::usage("`profiles` in the configuration is not a table; edit it by hand")
        })?;
    profile.set_implicit(false);
    match profiles.get(name).and_then(Item::as_table) {
        Some(old) => {
            profile.set_position(old.position());
            *profile.decor_mut() = old.decor().clone();
        }
        None => {
            // No position: it follows the last profile table in the file.
            profile.decor_mut().set_prefix(format!("{carried}\n"));
        }
    }
    profiles.insert(name, Item::Table(profile));
    Ok(())
}

/// Writes the file atomically (temp file + rename), keeping its permissions.
fn write_config(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "calpump.toml".into()),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", tmp.display())))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::failure(format!("cannot write {}: {e}", path.display()))
    })
}

pub async fn run(global: &Global, args: &ProfileAddArgs) -> Result<ExitCode> {
    let lang = Lang::detect(global.lang.as_deref());
    let path = &global.config;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        CliError::usage(format!("{}: not valid TOML: {e}", path.display()))
    })?;
    let (config, _) = Config::parse(&text, Some(path));
    let flags_complete = args.name.is_some() && args.backend.is_some();
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let interactive = !flags_complete && terminal && !args.secret_stdin;
    let mut ask = Asker {
        interactive,
        lang,
        args,
        missing: Vec::new(),
        resolver: config.secret_resolver(),
        stdin_secret_used: false,
        route_mailbox: false,
    };
    if interactive {
        eprintln!(
            "{}",
            tr!(
                lang,
                format!(
                    "Adding a connection profile to {} (Ctrl-C cancels; nothing is written before the end).",
                    path.display()
                ),
                format!(
                    "Neues Verbindungsprofil in {} (Strg-C bricht ab; geschrieben wird erst am Ende).",
                    path.display()
                )
            )
        );
    }

    let default_name = if config.profiles.contains_key("cloud") {
        None
    } else {
        Some("cloud")
    };
    let mut name = ask
        .text(
            args.name.as_deref(),
            "--name",
            tr!(lang, "Profile name", "Name des Profils"),
            default_name,
            true,
            profile_name,
        )?
        .unwrap_or_default();
    // A name in use: replaced with --force or a yes; on a terminal a no asks for another name.
    while !name.is_empty() && config.profiles.contains_key(&name) && !args.force {
        if !interactive {
            return Err(CliError::usage(tr!(
                lang,
                format!("profile `{name}` exists; pass --force to replace it"),
                format!("Profil `{name}` gibt es schon; mit --force wird es ersetzt")
            )));
        }
        let replace = ask.confirm(
            None,
            &tr!(
                lang,
                format!("A profile `{name}` exists. Replace it?"),
                format!("Ein Profil `{name}` gibt es schon. Ersetzen?")
            ),
            false,
        )?;
        if replace {
            break;
        }
        eprintln!(
            "{}",
            tr!(
                lang,
                format!("`{name}` stays as it is; choose another name for the new profile."),
                format!(
                    "`{name}` bleibt, wie es ist; wählen Sie einen anderen Namen für das neue Profil."
                )
            )
        );
        name = ask
            .text(
                None,
                "--name",
                tr!(lang, "Profile name", "Name des Profils"),
                None,
                true,
                profile_name,
            )?
            .unwrap_or_default();
    }
    ask.route_mailbox = config
        .routes
        .iter()
        .any(|r| r.profile == name && !r.mailboxes.is_empty());
    let flag_kind = match (args.backend.as_deref(), args.auth.as_deref()) {
        (Some("graph"), _) => Some(0),
        (Some("ews"), Some("oauth")) => Some(2),
        (Some("ews"), Some(_)) => Some(1),
        (Some("ews"), None) if !interactive => {
            ask.missing.push("--auth ntlm|basic|oauth");
            None
        }
        _ => None,
    };
    let kind = match ask.choose(
        flag_kind,
        "--backend",
        tr!(
            lang,
            "What does calpump connect to?",
            "Womit verbindet sich calpump?"
        ),
        &[
            tr!(
                lang,
                "Exchange Online through Microsoft Graph (recommended)",
                "Exchange Online über Microsoft Graph (empfohlen)"
            ),
            tr!(
                lang,
                "Exchange Server on-premises through EWS (NTLM or Basic)",
                "Lokaler Exchange Server über EWS (NTLM oder Basic)"
            ),
            tr!(
                lang,
                "Exchange Online through EWS (OAuth; EWS ends there on 1 April 2027)",
                "Exchange Online über EWS (OAuth; EWS endet dort am 1. April 2027)"
            ),
        ],
    )? {
        Some(0) => Kind::Graph,
        Some(1) => Kind::EwsOnPrem,
        Some(_) => Kind::EwsOnline,
        None => {
            ask.fail_if_missing()?;
            return Err(CliError::usage("--backend graph|ews"));
        }
    };
    let table = answers(&mut ask, kind)?;
    ask.fail_if_missing()?;

    // The profile as the factory sees it, checked offline first.
    let settings_text = {
        let mut t = table.clone();
        t.remove("backend");
        let mut d = DocumentMut::new();
        for (k, v) in t.iter() {
            d.insert(k, v.clone());
        }
        d.to_string()
    };
    let settings: toml::Table = settings_text
        .parse()
        .map_err(|e| CliError::failure(format!("internal: the new profile does not parse: {e}")))?;
    let backend = if kind == Kind::Graph { "graph" } else { "ews" };
    let factory = crate::backends::find(backend).map_err(|known| {
        CliError::usage(format!(
            "this calpump has no `{backend}` backend (known: {known})"
        ))
    })?;
    let resolver = config.secret_resolver();
    let ctx = ProfileContext {
        name: &name,
        settings: &settings,
        secrets: &resolver,
    };
    let issues: Vec<ConfigIssue> = factory
        .check(&ctx)
        .into_iter()
        .map(|i| i.under(&format!("profiles.{name}")))
        .collect();
    for issue in issues.iter().filter(|i| !i.is_error()) {
        eprintln!("{issue}");
    }
    if issues.iter().any(ConfigIssue::is_error) {
        let text: Vec<String> = issues
            .iter()
            .filter(|i| i.is_error())
            .map(ToString::to_string)
            .collect();
        return Err(CliError::usage(format!(
            "{}\n{}",
            tr!(
                lang,
                "the profile is not valid; nothing was written:",
                "das Profil ist ungültig; nichts wurde geschrieben:"
            ),
            text.join("\n")
        )));
    }

    let mut steps = Vec::new();
    if !args.no_test {
        let mut with_profile = config.clone();
        with_profile.profiles.insert(
            name.clone(),
            ProfileConfig {
                backend: backend.to_string(),
                settings: settings.clone(),
            },
        );
        let probe = super::profile::probe_mailbox(&with_profile, &name, None);
        println!(
            "{}",
            tr!(
                lang,
                format!("Testing the connection of `{name}`…"),
                format!("Teste die Verbindung von `{name}` …")
            )
        );
        steps = super::profile::run_steps(&with_profile, &name, factory.as_ref(), probe.as_deref())
            .await;
        super::profile::print_steps(&steps, lang);
    }

    place_profile(&mut doc, &name, table)?;
    write_config(path, &doc.to_string())?;
    println!(
        "{}",
        tr!(
            lang,
            format!("Wrote profile `{name}` to {}.", path.display()),
            format!("Profil `{name}` in {} geschrieben.", path.display())
        )
    );
    match super::profile::failure(&steps) {
        Some((n, step, d)) => {
            println!(
                "{}",
                tr!(
                    lang,
                    format!(
                        "The connection test failed at step {n} ({}) with [{}]; fix it as described above, then run `calpump profile test {name}`.",
                        super::profile::step_title(step, lang),
                        d.code()
                    ),
                    format!(
                        "Der Verbindungstest ist bei Schritt {n} ({}) mit [{}] fehlgeschlagen; wie oben beschrieben beheben, dann `calpump profile test {name}` ausführen.",
                        super::profile::step_title(step, lang),
                        d.code()
                    )
                )
            );
            Ok(ExitCode::from(1))
        }
        None => {
            if !args.no_test {
                println!(
                    "{}",
                    tr!(
                        lang,
                        format!("The connection works. Next: `calpump mailboxes {name}`."),
                        format!(
                            "Die Verbindung funktioniert. Weiter mit `calpump mailboxes {name}`."
                        )
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(text: &str) -> String {
        let mut doc: DocumentMut = text.parse().expect("toml");
        let mut profile = Table::new();
        profile.insert("backend", value("graph"));
        place_profile(&mut doc, "new", profile).expect("placed");
        doc.to_string()
    }

    #[test]
    fn a_new_profile_goes_below_the_comments_under_the_last_one() {
        let text = "[profiles.cloud]\nbackend = \"graph\"\n# authority = \"x\"\n# graph_url = \"y\"\n\n# The sinks.\n[sinks.signs]\nplugin = \"doorsign\"\n";
        assert_eq!(
            added(text),
            "[profiles.cloud]\nbackend = \"graph\"\n# authority = \"x\"\n# graph_url = \"y\"\n\n[profiles.new]\nbackend = \"graph\"\n\n# The sinks.\n[sinks.signs]\nplugin = \"doorsign\"\n"
        );
        // At the end of the file.
        let text = "[state]\npath = \"s.db\"\n\n[profiles.cloud]\nbackend = \"graph\"\n# authority = \"x\"\n";
        assert_eq!(
            added(text),
            "[state]\npath = \"s.db\"\n\n[profiles.cloud]\nbackend = \"graph\"\n# authority = \"x\"\n\n[profiles.new]\nbackend = \"graph\"\n"
        );
    }

    #[test]
    fn a_comment_right_above_the_next_table_stays_there() {
        let text = "[profiles.cloud]\nbackend = \"graph\"\n# The sinks.\n[sinks.signs]\nplugin = \"doorsign\"\n";
        assert_eq!(
            added(text),
            "[profiles.cloud]\nbackend = \"graph\"\n\n[profiles.new]\nbackend = \"graph\"\n# The sinks.\n[sinks.signs]\nplugin = \"doorsign\"\n"
        );
        let text =
            "[profiles.cloud]\nbackend = \"graph\"\n\n[sinks.signs]\nplugin = \"doorsign\"\n";
        assert_eq!(
            added(text),
            "[profiles.cloud]\nbackend = \"graph\"\n\n[profiles.new]\nbackend = \"graph\"\n\n[sinks.signs]\nplugin = \"doorsign\"\n"
        );
    }
}
