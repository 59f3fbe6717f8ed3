//! Microsoft Entra ID (the token endpoint): `AADSTSnnnn` errors.
//! Source: learn.microsoft.com, "Microsoft Entra authentication and authorization error codes".

entry!(AADSTS65001, "entra.AADSTS65001", retryable: false, permission: true,
    en: { title: "Admin consent missing",
          cause: "The app's permissions have not been consented in this tenant: an administrator never clicked 'Grant admin consent', or the permission was added after consent was given. For the password grant, the user has not consented either.",
          remedy: "In the Microsoft Entra admin center open Identity > Applications > App registrations > (the app) > API permissions, check the permissions calpump needs are listed (Microsoft Graph application permissions Calendars.Read and Place.Read.All; for EWS Office 365 Exchange Online full_access_as_app, or EWS.AccessAsUser.All for the password grant) and click 'Grant admin consent for (tenant)'. Command line: `az ad app permission admin-consent --id <client-id>`. Consent takes a few minutes to reach Exchange." },
    de: { title: "Administratorzustimmung fehlt",
          cause: "Den Berechtigungen der App wurde in diesem Mandanten nicht zugestimmt: Niemand hat 'Administratorzustimmung erteilen' geklickt, oder die Berechtigung kam nach der Zustimmung hinzu. Beim Kennwort-Grant fehlt auch die Zustimmung des Benutzers.",
          remedy: "Im Microsoft Entra Admin Center unter Identität > Anwendungen > App-Registrierungen > (App) > API-Berechtigungen prüfen, dass die nötigen Berechtigungen eingetragen sind (Microsoft Graph-Anwendungsberechtigungen Calendars.Read und Place.Read.All; für EWS Office 365 Exchange Online full_access_as_app bzw. EWS.AccessAsUser.All beim Kennwort-Grant), dann 'Administratorzustimmung für (Mandant) erteilen' klicken. Befehlszeile: `az ad app permission admin-consent --id <client-id>`. Es dauert einige Minuten, bis Exchange die Zustimmung kennt." });

entry!(AADSTS7000215, "entra.AADSTS7000215", retryable: false,
    en: { title: "Invalid client secret",
          cause: "The secret sent does not match any secret of the app. Most often the secret's ID (a GUID) was pasted instead of its value; the value is shown only once, right after the secret is created.",
          remedy: "Under App registrations > (the app) > Certificates & secrets create a new client secret and copy the 'Value' column (not 'Secret ID') at once. Store it with `calpump secret encrypt` or in the environment variable the profile names, then run `calpump profile test`." },
    de: { title: "Ungültiges Client-Geheimnis",
          cause: "Das gesendete Geheimnis passt zu keinem Geheimnis der App. Meist wurde die ID des Geheimnisses (eine GUID) statt seines Werts eingefügt; der Wert wird nur einmal direkt nach dem Anlegen angezeigt.",
          remedy: "Unter App-Registrierungen > (App) > Zertifikate & Geheimnisse ein neues Client-Geheimnis anlegen und sofort die Spalte 'Wert' (nicht 'Geheimnis-ID') kopieren. Mit `calpump secret encrypt` oder in der im Profil genannten Umgebungsvariable hinterlegen, dann `calpump profile test` ausführen." });

entry!(AADSTS7000222, "entra.AADSTS7000222", retryable: false,
    en: { title: "Client secret expired",
          cause: "The app's client secret has passed its expiry date; Entra ID refuses it from that moment on.",
          remedy: "Under App registrations > (the app) > Certificates & secrets create a new secret (note its expiry), store its value, set the profile's `secret_expires` to the new date so calpump warns 30 days ahead next time, and run `calpump profile test`. Command line: `az ad app credential reset --id <client-id> --append`." },
    de: { title: "Client-Geheimnis abgelaufen",
          cause: "Das Client-Geheimnis der App hat sein Ablaufdatum überschritten; Entra ID lehnt es ab diesem Moment ab.",
          remedy: "Unter App-Registrierungen > (App) > Zertifikate & Geheimnisse ein neues Geheimnis anlegen (Ablaufdatum notieren), den Wert hinterlegen, `secret_expires` im Profil auf das neue Datum setzen, damit calpump nächstes Mal 30 Tage vorher warnt, und `calpump profile test` ausführen. Befehlszeile: `az ad app credential reset --id <client-id> --append`." });

entry!(AADSTS700016, "entra.AADSTS700016", retryable: false,
    en: { title: "Application not found in the directory",
          cause: "No app with this client id is registered in the tenant named by the profile: a typo in `client_id`, the wrong `tenant`, or the app was deleted.",
          remedy: "Copy 'Application (client) ID' from App registrations > (the app) > Overview into `client_id`, and check that `tenant` is the directory the app is registered in (its 'Directory (tenant) ID' or primary domain)." },
    de: { title: "Anwendung im Verzeichnis nicht gefunden",
          cause: "Im Mandanten des Profils ist keine App mit dieser Client-ID registriert: ein Tippfehler in `client_id`, der falsche `tenant`, oder die App wurde gelöscht.",
          remedy: "Die 'Anwendungs-ID (Client)' aus App-Registrierungen > (App) > Übersicht in `client_id` übernehmen und prüfen, dass `tenant` das Verzeichnis der App ist ('Verzeichnis-ID (Mandant)' oder primäre Domäne)." });

entry!(AADSTS700027, "entra.AADSTS700027", retryable: false,
    en: { title: "Certificate assertion rejected",
          cause: "The signed client assertion does not match a certificate uploaded to the app: the certificate was never uploaded or was removed, it expired, the wrong private key is configured, or this machine's clock is off by minutes.",
          remedy: "Upload the public part (.cer or .pem) of the configured certificate under App registrations > (the app) > Certificates & secrets > Certificates and compare its thumbprint with `calpump profile test`'s output; check the certificate's validity dates and the system clock (timedatectl)." },
    de: { title: "Zertifikats-Assertion abgelehnt",
          cause: "Die signierte Client-Assertion passt zu keinem in der App hinterlegten Zertifikat: Es wurde nie hochgeladen oder entfernt, es ist abgelaufen, der falsche private Schlüssel ist eingestellt, oder die Uhr dieses Rechners geht um Minuten falsch.",
          remedy: "Den öffentlichen Teil (.cer oder .pem) des eingestellten Zertifikats unter App-Registrierungen > (App) > Zertifikate & Geheimnisse > Zertifikate hochladen und den Fingerabdruck mit der Ausgabe von `calpump profile test` vergleichen; Gültigkeit des Zertifikats und Systemuhr (timedatectl) prüfen." });

entry!(AADSTS90002, "entra.AADSTS90002", retryable: false,
    en: { title: "Tenant not found",
          cause: "The tenant name or id in the profile does not exist in this cloud: a typo, or a national-cloud tenant used against the public cloud's sign-in endpoint.",
          remedy: "Set `tenant` to the primary domain (contoso.onmicrosoft.com) or the 'Directory (tenant) ID' from the app's Overview. For a national cloud set `authority` (e.g. the .us or .cn sign-in host)." },
    de: { title: "Mandant nicht gefunden",
          cause: "Der Mandantenname oder die ID im Profil existiert in dieser Cloud nicht: ein Tippfehler, oder ein Mandant einer nationalen Cloud gegen den Anmeldeendpunkt der öffentlichen Cloud.",
          remedy: "`tenant` auf die primäre Domäne (contoso.onmicrosoft.com) oder die 'Verzeichnis-ID (Mandant)' aus der Übersicht der App setzen. Für nationale Clouds `authority` setzen." });

entry!(AADSTS50126, "entra.AADSTS50126", retryable: false,
    en: { title: "Invalid user name or password",
          cause: "The password grant was refused: the service account's user name or password is wrong, or the password was changed.",
          remedy: "Check `username` (the account's UPN) and the stored password; after a password change, store the new one with `calpump secret encrypt`. Prefer client credentials (application permissions): they need no user password." },
    de: { title: "Benutzername oder Kennwort falsch",
          cause: "Der Kennwort-Grant wurde abgelehnt: Benutzername oder Kennwort des Dienstkontos sind falsch, oder das Kennwort wurde geändert.",
          remedy: "`username` (UPN des Kontos) und das hinterlegte Kennwort prüfen; nach einer Kennwortänderung das neue mit `calpump secret encrypt` hinterlegen. Besser Client-Anmeldeinformationen (Anwendungsberechtigungen) verwenden: Sie brauchen kein Benutzerkennwort." });

entry!(AADSTS50076, "entra.AADSTS50076", retryable: false,
    en: { title: "Multi-factor authentication blocks the password grant",
          cause: "A Conditional Access policy or security defaults require MFA for the service account; the password grant cannot answer an MFA challenge.",
          remedy: "Switch the profile to client credentials (an application permission with a secret or certificate) — the lasting fix. Otherwise exclude the service account from the MFA policy for this app only, as your security policy allows." },
    de: { title: "Mehrstufige Authentifizierung verhindert den Kennwort-Grant",
          cause: "Eine Richtlinie für bedingten Zugriff oder die Sicherheitsstandards verlangen MFA für das Dienstkonto; der Kennwort-Grant kann keine MFA beantworten.",
          remedy: "Das Profil auf Client-Anmeldeinformationen umstellen (Anwendungsberechtigung mit Geheimnis oder Zertifikat) — die dauerhafte Lösung. Sonst das Dienstkonto nur für diese App von der MFA-Richtlinie ausnehmen, soweit Ihre Sicherheitsrichtlinie das erlaubt." });

entry!(AADSTS50105, "entra.AADSTS50105", retryable: false, permission: true,
    en: { title: "The account is not assigned to the application",
          cause: "The enterprise application has 'Assignment required' switched on and the signing-in account (or its group) is not assigned to it.",
          remedy: "In Microsoft Entra admin center open Enterprise applications > (the app) > Users and groups > Add user/group and assign the service account, or set Properties > 'Assignment required?' to No." },
    de: { title: "Das Konto ist der Anwendung nicht zugewiesen",
          cause: "Bei der Unternehmensanwendung ist 'Zuweisung erforderlich' eingeschaltet und das anmeldende Konto (oder seine Gruppe) ist ihr nicht zugewiesen.",
          remedy: "Im Microsoft Entra Admin Center unter Unternehmensanwendungen > (App) > Benutzer und Gruppen > Benutzer/Gruppe hinzufügen das Dienstkonto zuweisen oder unter Eigenschaften 'Zuweisung erforderlich?' auf Nein stellen." });

entry!(AADSTS53003, "entra.AADSTS53003", retryable: false,
    en: { title: "Blocked by Conditional Access",
          cause: "A Conditional Access policy blocks this sign-in (the location, the device, or the app is not allowed).",
          remedy: "Ask the Conditional Access administrator to check the sign-in log entry (its correlation id is in the detail) and to exclude calpump's workload identity or service account, or to allow this machine's network location." },
    de: { title: "Durch bedingten Zugriff blockiert",
          cause: "Eine Richtlinie für bedingten Zugriff blockiert diese Anmeldung (Standort, Gerät oder App nicht erlaubt).",
          remedy: "Den Administrator für bedingten Zugriff bitten, den Eintrag im Anmeldeprotokoll zu prüfen (Korrelations-ID im Detail) und calpumps Workload-Identität oder Dienstkonto auszunehmen oder den Netzwerkstandort dieses Rechners zuzulassen." });

entry!(OTHER, "entra.Other", retryable: false,
    en: { title: "Microsoft Entra ID refused the sign-in",
          cause: "The token endpoint returned an error calpump has no specific advice for; its AADSTS code and message are in the detail.",
          remedy: "Look the AADSTS code up in Microsoft's 'Microsoft Entra authentication and authorization error codes' reference and check the sign-in logs of the app with the correlation id from the detail." },
    de: { title: "Microsoft Entra ID hat die Anmeldung abgelehnt",
          cause: "Der Token-Endpunkt meldet einen Fehler, für den calpump keinen eigenen Rat hat; AADSTS-Code und Meldung stehen im Detail.",
          remedy: "Den AADSTS-Code in Microsofts Referenz 'Microsoft Entra authentication and authorization error codes' nachschlagen und die Anmeldeprotokolle der App mit der Korrelations-ID aus dem Detail prüfen." });

entry!(UNEXPECTED_RESPONSE, "entra.UnexpectedResponse", retryable: false,
    en: { title: "The sign-in endpoint gave an answer calpump does not understand",
          cause: "The token endpoint answered without a token and without an Entra ID error: the profile's `authority` points at a host or path that is not Entra ID's sign-in service (a typo, a tenant or path added after the host), or a proxy answered in its place.",
          remedy: "Set `authority` to the sign-in host only — https://login.microsoftonline.com, a national cloud's sign-in host, or the simulator's address — without tenant or path, or remove it for the public cloud. The status and the start of the answer are in the detail; exempt the sign-in host from proxy interception if a proxy answered." },
    de: { title: "Der Anmeldeendpunkt gibt eine unverständliche Antwort",
          cause: "Der Token-Endpunkt antwortete weder mit einem Token noch mit einem Entra-ID-Fehler: `authority` im Profil zeigt auf einen Host oder Pfad, der nicht der Anmeldedienst von Entra ID ist (Tippfehler, Mandant oder Pfad hinter dem Host), oder ein Proxy hat an seiner Stelle geantwortet.",
          remedy: "`authority` nur auf den Anmeldehost setzen — https://login.microsoftonline.com, den Anmeldehost einer nationalen Cloud oder die Adresse des Simulators — ohne Mandant oder Pfad, oder für die öffentliche Cloud ganz weglassen. Status und Anfang der Antwort stehen im Detail; hat ein Proxy geantwortet, den Anmeldehost von der Proxy-Prüfung ausnehmen." });

entry!(AADSTS700024, "entra.AADSTS700024", retryable: false,
    en: { title: "Certificate assertion outside its valid time range",
          cause: "The signed client assertion calpump sends is valid for five minutes from this machine's current time. Entra ID rejects it when this machine's clock is off by minutes.",
          remedy: "Synchronise the system clock: check `timedatectl status`, enable time synchronisation (`timedatectl set-ntp true`, or chrony/ntpd against your time server), then run `calpump profile test` again." },
    de: { title: "Zertifikats-Assertion außerhalb ihres Gültigkeitszeitraums",
          cause: "Die signierte Client-Assertion, die calpump sendet, gilt fünf Minuten ab der aktuellen Uhrzeit dieses Rechners. Entra ID lehnt sie ab, wenn die Uhr dieses Rechners um Minuten falsch geht.",
          remedy: "Die Systemuhr synchronisieren: `timedatectl status` prüfen, Zeitsynchronisierung einschalten (`timedatectl set-ntp true` oder chrony/ntpd gegen Ihren Zeitserver), dann `calpump profile test` erneut ausführen." });

entry!(AADSTS7000218, "entra.AADSTS7000218", retryable: false,
    en: { title: "The password grant needs a client secret or public client flows",
          cause: "The profile uses the password grant without `client_secret`, but the app registration is a confidential client: Entra ID then requires a client secret or certificate in the request.",
          remedy: "Either add the app's `client_secret` to the profile, or in the Microsoft Entra admin center open App registrations > (the app) > Authentication > Advanced settings and set 'Allow public client flows' to Yes." },
    de: { title: "Der Kennwort-Grant braucht ein Client-Geheimnis oder öffentliche Client-Flows",
          cause: "Das Profil nutzt den Kennwort-Grant ohne `client_secret`, die App-Registrierung ist aber ein vertraulicher Client: Dann verlangt Entra ID ein Client-Geheimnis oder Zertifikat in der Anfrage.",
          remedy: "Entweder das `client_secret` der App im Profil ergänzen oder im Microsoft Entra Admin Center unter App-Registrierungen > (App) > Authentifizierung > Erweiterte Einstellungen 'Öffentliche Clientflows zulassen' auf Ja stellen." });

entry!(AADSTS70011, "entra.AADSTS70011", retryable: false,
    en: { title: "Invalid scope",
          cause: "The scope requested is not valid for this grant: usually a `scope` override in the profile with a typo, a scope of another cloud, or a single permission where client credentials need the resource's '/.default'.",
          remedy: "Remove `scope` from the profile so calpump uses the backend's default (https://graph.microsoft.com/.default for Graph, https://outlook.office365.com/.default for EWS), or correct it to the resource URL followed by /.default." },
    de: { title: "Ungültiger Scope",
          cause: "Der angeforderte Scope ist für diesen Grant ungültig: meist ein `scope` im Profil mit Tippfehler, ein Scope einer anderen Cloud, oder eine einzelne Berechtigung, wo Client-Anmeldeinformationen das '/.default' der Ressource brauchen.",
          remedy: "`scope` aus dem Profil entfernen, damit calpump den Standard des Backends nutzt (https://graph.microsoft.com/.default für Graph, https://outlook.office365.com/.default für EWS), oder ihn auf die Ressourcen-URL gefolgt von /.default korrigieren." });

entry!(AADSTS500011, "entra.AADSTS500011", retryable: false,
    en: { title: "The service is not available in this tenant",
          cause: "The resource the token is for (Microsoft Graph or Exchange Online) has no service principal in the tenant: the tenant has no Exchange Online subscription, the profile names the wrong tenant, or the scope belongs to another cloud than the authority.",
          remedy: "Check that `tenant` is the directory whose mailboxes calpump reads and that it has Exchange Online. For a national cloud set `authority` and the service URL (`graph_url`, `url`) of the same cloud, and leave `scope` at its default." },
    de: { title: "Der Dienst ist in diesem Mandanten nicht verfügbar",
          cause: "Die Ressource des Tokens (Microsoft Graph oder Exchange Online) hat im Mandanten keinen Dienstprinzipal: Der Mandant hat kein Exchange Online, das Profil nennt den falschen Mandanten, oder der Scope gehört zu einer anderen Cloud als die Authority.",
          remedy: "Prüfen, dass `tenant` das Verzeichnis ist, dessen Postfächer calpump liest, und dass es Exchange Online hat. Für nationale Clouds `authority` und die Dienst-URL (`graph_url`, `url`) derselben Cloud setzen und `scope` beim Standard lassen." });

entry!(AADSTS50034, "entra.AADSTS50034", retryable: false,
    en: { title: "The service account does not exist in this tenant",
          cause: "The password grant names a `username` that is not a user of the tenant in the profile: a typo in the UPN, or the account lives in another tenant.",
          remedy: "Look the account up in the Microsoft Entra admin center under Users and copy its User principal name into `username`; check that `tenant` is the account's home tenant." },
    de: { title: "Das Dienstkonto existiert in diesem Mandanten nicht",
          cause: "Der Kennwort-Grant nennt einen `username`, der im Mandanten des Profils kein Benutzer ist: ein Tippfehler im UPN, oder das Konto gehört zu einem anderen Mandanten.",
          remedy: "Das Konto im Microsoft Entra Admin Center unter Benutzer suchen und seinen Benutzerprinzipalnamen in `username` übernehmen; prüfen, dass `tenant` der Heimmandant des Kontos ist." });

entry!(AADSTS50055, "entra.AADSTS50055", retryable: false,
    en: { title: "The service account's password has expired",
          cause: "The password of the account used with the password grant has reached its maximum age; Entra ID refuses it until it is changed.",
          remedy: "Set a new password for the service account, store it (`calpump secret encrypt` or the environment variable the profile names) and run `calpump profile test`. To avoid a repeat, exempt the service account from password expiry as your policy allows — or move the profile to client credentials, which need no user password." },
    de: { title: "Das Kennwort des Dienstkontos ist abgelaufen",
          cause: "Das Kennwort des Kontos für den Kennwort-Grant hat sein Höchstalter erreicht; Entra ID lehnt es ab, bis es geändert ist.",
          remedy: "Ein neues Kennwort für das Dienstkonto setzen, hinterlegen (`calpump secret encrypt` oder die im Profil genannte Umgebungsvariable) und `calpump profile test` ausführen. Damit es nicht wieder passiert, das Dienstkonto vom Kennwortablauf ausnehmen, soweit Ihre Richtlinie es erlaubt — oder das Profil auf Client-Anmeldeinformationen umstellen, die kein Benutzerkennwort brauchen." });

entry!(AADSTS50057, "entra.AADSTS50057", retryable: false,
    en: { title: "The service account is disabled",
          cause: "The account used with the password grant is disabled in the directory (sign-in blocked, or disabled in the on-premises Active Directory it is synchronised from).",
          remedy: "In the Microsoft Entra admin center open Users > (the account) and allow sign-in again (or enable the account in Active Directory and wait for the next synchronisation), or configure another service account." },
    de: { title: "Das Dienstkonto ist deaktiviert",
          cause: "Das Konto für den Kennwort-Grant ist im Verzeichnis deaktiviert (Anmeldung blockiert, oder im lokalen Active Directory deaktiviert, aus dem es synchronisiert wird).",
          remedy: "Im Microsoft Entra Admin Center unter Benutzer > (Konto) die Anmeldung wieder erlauben (oder das Konto im Active Directory aktivieren und die nächste Synchronisierung abwarten) oder ein anderes Dienstkonto einstellen." });

entry!(AADSTS50053, "entra.AADSTS50053", retryable: false,
    en: { title: "The service account is locked",
          cause: "Entra ID locked the account after too many sign-ins with a wrong password — often calpump itself retrying an outdated stored password — or blocked sign-ins from this machine's IP address as suspicious.",
          remedy: "Fix the stored password first, so calpump does not lock the account again. Then let the lockout expire or have an administrator unblock it; the sign-in logs (filter on error 50053) show which of the two reasons applied." },
    de: { title: "Das Dienstkonto ist gesperrt",
          cause: "Entra ID hat das Konto nach zu vielen Anmeldungen mit falschem Kennwort gesperrt — oft, weil calpump selbst ein veraltetes hinterlegtes Kennwort wiederholt — oder Anmeldungen von der IP-Adresse dieses Rechners als verdächtig blockiert.",
          remedy: "Zuerst das hinterlegte Kennwort korrigieren, damit calpump das Konto nicht erneut sperrt. Dann die Sperre ablaufen lassen oder von einem Administrator aufheben lassen; die Anmeldeprotokolle (Filter auf Fehler 50053) zeigen, welcher der beiden Gründe vorlag." });

entry!(AADSTS900144, "entra.AADSTS900144", retryable: false,
    en: { title: "The token request lacks a required parameter",
          cause: "Entra ID refused the token request because a field it needs is missing (the detail names it): usually an empty `client_id`, `scope` or credential in the profile.",
          remedy: "Run `calpump check` and fill in the key the detail names (`client_id`, `client_secret` or `certificate` + `private_key`, `scope`); then run `calpump profile test`." },
    de: { title: "Der Token-Anfrage fehlt ein Pflichtparameter",
          cause: "Entra ID hat die Token-Anfrage abgelehnt, weil ein benötigtes Feld fehlt (das Detail nennt es): meist ein leeres `client_id`, `scope` oder Anmeldeinformation im Profil.",
          remedy: "`calpump check` ausführen und den im Detail genannten Schlüssel ausfüllen (`client_id`, `client_secret` bzw. `certificate` + `private_key`, `scope`); dann `calpump profile test` ausführen." });

entry!(AADSTS50196, "entra.AADSTS50196", retryable: true,
    en: { title: "Too many identical sign-ins (loop detected)",
          cause: "Entra ID saw the same token request many times in a short period and stopped answering it: several calpump processes share one app and restart quickly, or a script runs `profile test` in a tight loop.",
          remedy: "Wait a few minutes; calpump caches its tokens and backs off by itself. Make sure only one calpump daemon runs per profile and that nothing restarts it in a loop (check the service manager's restart settings)." },
    de: { title: "Zu viele gleiche Anmeldungen (Schleife erkannt)",
          cause: "Entra ID hat dieselbe Token-Anfrage in kurzer Zeit sehr oft gesehen und beantwortet sie nicht mehr: Mehrere calpump-Prozesse teilen sich eine App und starten schnell neu, oder ein Skript ruft `profile test` in einer engen Schleife auf.",
          remedy: "Einige Minuten warten; calpump speichert Tokens zwischen und wartet selbst ab. Sicherstellen, dass pro Profil nur ein calpump-Dienst läuft und ihn nichts in einer Schleife neu startet (Neustart-Einstellungen des Dienstverwalters prüfen)." });

entry!(AADSTS50000, "entra.AADSTS50000", retryable: true,
    en: { title: "Entra ID could not issue a token",
          cause: "The sign-in service itself failed to issue the token (TokenIssuanceError); nothing in the profile causes it.",
          remedy: "Wait and try again; calpump retries by itself. If it persists for more than an hour, check the Microsoft 365 service health page and open a support case with the trace and correlation IDs from the detail." },
    de: { title: "Entra ID konnte kein Token ausstellen",
          cause: "Der Anmeldedienst selbst konnte das Token nicht ausstellen (TokenIssuanceError); am Profil liegt es nicht.",
          remedy: "Abwarten und erneut versuchen; calpump wiederholt von selbst. Hält es länger als eine Stunde an, den Dienststatus von Microsoft 365 prüfen und mit den Trace- und Correlation-IDs aus dem Detail einen Supportfall eröffnen." });

entry!(AADSTS70003, "entra.AADSTS70003", retryable: false,
    en: { title: "The sign-in method is not allowed for this app",
          cause: "Entra ID does not accept this grant type for the app: the password grant (username + password) was used with an app that is not a public client, or a grant this tenant does not allow.",
          remedy: "Prefer client credentials: remove `username` and `password` and give `client_secret` or `certificate` + `private_key`. For the password grant, enable App registrations > (the app) > Authentication > 'Allow public client flows'." },
    de: { title: "Die Anmeldemethode ist für diese App nicht erlaubt",
          cause: "Entra ID akzeptiert diesen Grant-Typ für die App nicht: Der Kennwort-Grant (Benutzername + Kennwort) wurde mit einer App benutzt, die kein öffentlicher Client ist, oder mit einem Grant, den der Mandant nicht zulässt.",
          remedy: "Besser Client-Anmeldeinformationen verwenden: `username` und `password` entfernen und `client_secret` oder `certificate` + `private_key` angeben. Für den Kennwort-Grant unter App-Registrierungen > (App) > Authentifizierung 'Öffentliche Clientflows zulassen' einschalten." });

entry!(AADSTS700025, "entra.AADSTS700025", retryable: false,
    en: { title: "A public client must not send a secret",
          cause: "The app is registered as a public client (password grant), so Entra ID refuses a client secret or certificate sent with the request.",
          remedy: "For the password grant remove `client_secret` (and `certificate`/`private_key`) from the profile. If the app should use client credentials instead, turn off 'Allow public client flows' under App registrations > (the app) > Authentication and remove `username`/`password`." },
    de: { title: "Ein öffentlicher Client darf kein Geheimnis senden",
          cause: "Die App ist als öffentlicher Client registriert (Kennwort-Grant), daher lehnt Entra ID ein mitgesendetes Client-Geheimnis oder Zertifikat ab.",
          remedy: "Beim Kennwort-Grant `client_secret` (und `certificate`/`private_key`) aus dem Profil entfernen. Soll die App stattdessen Client-Anmeldeinformationen nutzen, unter App-Registrierungen > (App) > Authentifizierung 'Öffentliche Clientflows zulassen' ausschalten und `username`/`password` entfernen." });

entry!(AADSTS50027, "entra.AADSTS50027", retryable: false,
    en: { title: "The client assertion is not a valid token",
          cause: "The signed assertion calpump sent with the certificate was refused as an invalid JWT: wrong issuer or audience, or outside its validity period — almost always because this machine's clock is off.",
          remedy: "Check the system clock (`timedatectl`; enable NTP). If `authority` is set, make sure it is the sign-in host of the tenant's cloud. Then run `calpump profile test`." },
    de: { title: "Die Client-Assertion ist kein gültiges Token",
          cause: "Die mit dem Zertifikat signierte Assertion wurde als ungültiges JWT abgelehnt: falscher Aussteller oder falsche Zielgruppe, oder außerhalb ihres Gültigkeitszeitraums — fast immer, weil die Uhr dieses Rechners falsch geht.",
          remedy: "Systemuhr prüfen (`timedatectl`; NTP einschalten). Ist `authority` gesetzt, muss es der Anmeldehost der Cloud des Mandanten sein. Dann `calpump profile test` ausführen." });

entry!(AADSTS700021, "entra.AADSTS700021", retryable: false,
    en: { title: "The certificate assertion names another app",
          cause: "The client assertion's issuer and subject must be the profile's `client_id`; Entra ID found another application id in it.",
          remedy: "Check that `client_id` is the 'Application (client) ID' of the app the certificate was uploaded to (App registrations > (the app) > Overview)." },
    de: { title: "Die Zertifikats-Assertion nennt eine andere App",
          cause: "Aussteller und Betreff der Client-Assertion müssen die `client_id` des Profils sein; Entra ID fand darin eine andere Anwendungs-ID.",
          remedy: "Prüfen, dass `client_id` die 'Anwendungs-ID (Client)' der App ist, in die das Zertifikat hochgeladen wurde (App-Registrierungen > (App) > Übersicht)." });

entry!(AADSTS1002012, "entra.AADSTS1002012", retryable: false,
    en: { title: "Client credentials need a `/.default` scope",
          cause: "With client credentials (secret or certificate) Entra ID only accepts a scope ending in `/.default`; the profile's `scope` names individual permissions instead.",
          remedy: "Remove `scope` from the profile to use the backend's default (https://graph.microsoft.com/.default or https://outlook.office365.com/.default), or set it to the resource followed by `/.default`." },
    de: { title: "Client-Anmeldeinformationen brauchen einen Bereich mit `/.default`",
          cause: "Bei Client-Anmeldeinformationen (Geheimnis oder Zertifikat) akzeptiert Entra ID nur einen Bereich, der auf `/.default` endet; `scope` im Profil nennt stattdessen einzelne Berechtigungen.",
          remedy: "`scope` aus dem Profil entfernen, damit der Standard des Backends gilt (https://graph.microsoft.com/.default bzw. https://outlook.office365.com/.default), oder auf die Ressource gefolgt von `/.default` setzen." });

entry!(AADSTS28000, "entra.AADSTS28000", retryable: false,
    en: { title: "The scope names more than one resource",
          cause: "A token is always for one resource (Microsoft Graph or Exchange Online); the profile's `scope` mixes both.",
          remedy: "Remove `scope` from the profile, or keep only the scopes of the backend's resource: https://graph.microsoft.com/… for `backend = \"graph\"`, https://outlook.office365.com/… for EWS." },
    de: { title: "Der Bereich nennt mehr als eine Ressource",
          cause: "Ein Token gilt immer für genau eine Ressource (Microsoft Graph oder Exchange Online); `scope` im Profil mischt beide.",
          remedy: "`scope` aus dem Profil entfernen oder nur die Bereiche der Ressource des Backends behalten: https://graph.microsoft.com/… für `backend = \"graph\"`, https://outlook.office365.com/… für EWS." });

entry!(AADSTS700082, "entra.AADSTS700082", retryable: false,
    en: { title: "The refresh token expired after inactivity",
          cause: "calpump kept a refresh token for the password grant, and it went unused for too long (90 days by default), so Entra ID no longer accepts it.",
          remedy: "Nothing to configure: calpump signs in again with the stored user name and password. If the password changed meanwhile, store the new one (`calpump secret encrypt`) and run `calpump profile test`." },
    de: { title: "Das Aktualisierungstoken ist nach Inaktivität abgelaufen",
          cause: "calpump hatte für den Kennwort-Grant ein Aktualisierungstoken, das zu lange unbenutzt blieb (standardmäßig 90 Tage), daher akzeptiert Entra ID es nicht mehr.",
          remedy: "Nichts einzustellen: calpump meldet sich mit dem hinterlegten Benutzernamen und Kennwort neu an. Wurde das Kennwort inzwischen geändert, das neue hinterlegen (`calpump secret encrypt`) und `calpump profile test` ausführen." });

entry!(AADSTS9002313, "entra.AADSTS9002313", retryable: false,
    en: { title: "Entra ID found the token request malformed",
          cause: "The request reached the token endpoint but could not be read: often a proxy that rewrites requests, an `authority` that points at something other than a Microsoft sign-in host, or a value with unexpected characters.",
          remedy: "Check `authority` (leave it out for the public cloud) and any HTTP proxy between calpump and the internet; run `calpump profile test` and keep the trace ID from the detail for a support case." },
    de: { title: "Entra ID hält die Token-Anfrage für fehlerhaft",
          cause: "Die Anfrage erreichte den Token-Endpunkt, war aber nicht lesbar: oft ein Proxy, der Anfragen umschreibt, eine `authority`, die nicht auf einen Microsoft-Anmeldehost zeigt, oder ein Wert mit unerwarteten Zeichen.",
          remedy: "`authority` prüfen (für die öffentliche Cloud weglassen) sowie einen HTTP-Proxy zwischen calpump und dem Internet; `calpump profile test` ausführen und die Trace-ID aus dem Detail für einen Supportfall aufheben." });

entry!(AADSTS70000, "entra.AADSTS70000", retryable: false,
    en: { title: "The grant was refused",
          cause: "Entra ID did not accept the presented grant (a refresh token or assertion): it was revoked, belongs to another app, or the account's sign-in state changed.",
          remedy: "Run `calpump profile test`: calpump signs in anew with the configured credential. If it keeps failing, check the sign-in logs of the service account or app in the Microsoft Entra admin center for the reason." },
    de: { title: "Der Grant wurde abgelehnt",
          cause: "Entra ID hat den vorgelegten Grant (ein Aktualisierungstoken oder eine Assertion) nicht akzeptiert: Er wurde widerrufen, gehört zu einer anderen App, oder der Anmeldestatus des Kontos hat sich geändert.",
          remedy: "`calpump profile test` ausführen: calpump meldet sich mit den eingestellten Anmeldeinformationen neu an. Schlägt es weiter fehl, im Microsoft Entra Admin Center die Anmeldeprotokolle des Dienstkontos oder der App auf den Grund prüfen." });

entry!(AADSTS50079, "entra.AADSTS50079", retryable: false,
    en: { title: "The account must register for multi-factor authentication",
          cause: "A policy requires MFA registration for the service account; the password grant cannot complete it, so every sign-in fails.",
          remedy: "Exclude the service account from the MFA registration policy (a Conditional Access exclusion for a dedicated, strongly protected account), or better switch the profile to client credentials (application permissions), which need no user sign-in." },
    de: { title: "Das Konto muss sich für die Multi-Faktor-Authentifizierung registrieren",
          cause: "Eine Richtlinie verlangt für das Dienstkonto die MFA-Registrierung; der Kennwort-Grant kann sie nicht durchführen, daher scheitert jede Anmeldung.",
          remedy: "Das Dienstkonto von der MFA-Registrierungsrichtlinie ausnehmen (eine Ausnahme im bedingten Zugriff für ein eigenes, gut geschütztes Konto) oder besser das Profil auf Client-Anmeldeinformationen (Anwendungsberechtigungen) umstellen, die keine Benutzeranmeldung brauchen." });

entry!(AADSTS50173, "entra.AADSTS50173", retryable: false,
    en: { title: "The account's sessions were revoked",
          cause: "An administrator or the user revoked the sessions of the service account (or its password was reset), so the stored refresh token is no longer valid.",
          remedy: "If the password changed, store the new one (`calpump secret encrypt`), then run `calpump profile test`; calpump signs in anew." },
    de: { title: "Die Sitzungen des Kontos wurden widerrufen",
          cause: "Ein Administrator oder der Benutzer hat die Sitzungen des Dienstkontos widerrufen (oder sein Kennwort wurde zurückgesetzt), daher gilt das gespeicherte Aktualisierungstoken nicht mehr.",
          remedy: "Wurde das Kennwort geändert, das neue hinterlegen (`calpump secret encrypt`), dann `calpump profile test` ausführen; calpump meldet sich neu an." });

entry!(AADSTS7000112, "entra.AADSTS7000112", retryable: false,
    en: { title: "The application is disabled",
          cause: "The app's enterprise application (service principal) is disabled for sign-in in this tenant.",
          remedy: "In Microsoft Entra admin center open Enterprise applications > (the app) > Properties and set 'Enabled for users to sign in?' to Yes — or, if it was disabled on purpose, ask who did it before re-enabling." },
    de: { title: "Die Anwendung ist deaktiviert",
          cause: "Die Unternehmensanwendung (der Dienstprinzipal) der App ist in diesem Mandanten für die Anmeldung deaktiviert.",
          remedy: "Im Microsoft Entra Admin Center unter Unternehmensanwendungen > (App) > Eigenschaften 'Aktiviert für die Benutzeranmeldung?' auf Ja stellen — oder, falls sie absichtlich deaktiviert wurde, vorher klären, wer das getan hat." });

entry!(AADSTS7000229, "entra.AADSTS7000229", retryable: false, permission: true,
    en: { title: "The app has no service principal in this tenant",
          cause: "The app registration exists, but the tenant has no enterprise application (service principal) for it, so no permissions can be granted to it: typical for a multi-tenant app that was never consented in this tenant.",
          remedy: "Create the service principal and grant consent: `az ad sp create --id <client-id>`, then under App registrations > (the app) > API permissions click 'Grant admin consent'." },
    de: { title: "Die App hat in diesem Mandanten keinen Dienstprinzipal",
          cause: "Die App-Registrierung existiert, aber der Mandant hat keine Unternehmensanwendung (keinen Dienstprinzipal) dafür, daher können ihr keine Berechtigungen erteilt werden: typisch für eine mehrinstanzenfähige App, der in diesem Mandanten nie zugestimmt wurde.",
          remedy: "Den Dienstprinzipal anlegen und zustimmen: `az ad sp create --id <client-id>`, dann unter App-Registrierungen > (App) > API-Berechtigungen 'Administratorzustimmung erteilen' klicken." });

entry!(AADSTS50128, "entra.AADSTS50128", retryable: false,
    en: { title: "The tenant domain is not known",
          cause: "The `tenant` in the profile is not a domain or id Entra ID can map to a directory: a typo, or a domain that is not verified in the tenant.",
          remedy: "Set `tenant` to the primary domain (contoso.onmicrosoft.com) or the 'Directory (tenant) ID' from the app's Overview." },
    de: { title: "Die Mandantendomäne ist unbekannt",
          cause: "Der `tenant` im Profil ist keine Domäne oder ID, die Entra ID einem Verzeichnis zuordnen kann: ein Tippfehler, oder eine im Mandanten nicht verifizierte Domäne.",
          remedy: "`tenant` auf die primäre Domäne (contoso.onmicrosoft.com) oder die 'Verzeichnis-ID (Mandant)' aus der Übersicht der App setzen." });

entry!(AADSTS50158, "entra.AADSTS50158", retryable: false,
    en: { title: "An external security challenge blocks the sign-in",
          cause: "A Conditional Access policy requires an external MFA or security check for the service account, which the password grant cannot answer.",
          remedy: "Exclude the service account from that policy, or better switch the profile to client credentials (application permissions), which need no user sign-in." },
    de: { title: "Eine externe Sicherheitsprüfung blockiert die Anmeldung",
          cause: "Eine Richtlinie für bedingten Zugriff verlangt für das Dienstkonto eine externe MFA- oder Sicherheitsprüfung, die der Kennwort-Grant nicht beantworten kann.",
          remedy: "Das Dienstkonto von dieser Richtlinie ausnehmen oder besser das Profil auf Client-Anmeldeinformationen (Anwendungsberechtigungen) umstellen, die keine Benutzeranmeldung brauchen." });

pub static ALL: &[&crate::diagnostics::DiagnosticInfo] = &[
    &AADSTS65001,
    &AADSTS7000215,
    &AADSTS7000222,
    &AADSTS700016,
    &AADSTS700027,
    &AADSTS90002,
    &AADSTS50126,
    &AADSTS50076,
    &AADSTS50105,
    &AADSTS53003,
    &OTHER,
    &UNEXPECTED_RESPONSE,
    &AADSTS700024,
    &AADSTS7000218,
    &AADSTS70011,
    &AADSTS500011,
    &AADSTS50034,
    &AADSTS50055,
    &AADSTS50057,
    &AADSTS50053,
    &AADSTS900144,
    &AADSTS50196,
    &AADSTS50000,
    &AADSTS70003,
    &AADSTS700025,
    &AADSTS50027,
    &AADSTS700021,
    &AADSTS1002012,
    &AADSTS28000,
    &AADSTS700082,
    &AADSTS9002313,
    &AADSTS70000,
    &AADSTS50079,
    &AADSTS50173,
    &AADSTS7000112,
    &AADSTS7000229,
    &AADSTS50128,
    &AADSTS50158,
];
