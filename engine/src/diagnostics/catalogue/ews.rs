//! Exchange Web Services: `ResponseCode`s, HTTP answers and service states.
//! Source: office-developer-exchange-docs, `docs/web-service-reference/responsecode.md`.

entry!(IMPERSONATE_USER_DENIED, "ews.ErrorImpersonateUserDenied", retryable: false, permission: true,
    en: { title: "Impersonation of this mailbox is denied",
          cause: "The service account lacks the ApplicationImpersonation role, or the role's scope leaves this mailbox out. On Exchange Online the role has been retired: app-only access needs the full_access_as_app permission instead.",
          remedy: "On-premises, in the Exchange Management Shell: `New-ManagementRoleAssignment -Name calpump-impersonation -Role ApplicationImpersonation -User <service account>` (add `-CustomRecipientWriteScope <scope>` to limit it to rooms). Role changes take several minutes to replicate and to reach the EWS worker process; wait, then run `calpump profile test --wait`. On Exchange Online use an app registration with full_access_as_app, or move the route to Graph (`calpump migrate plan`)." },
    de: { title: "Identitätswechsel für dieses Postfach verweigert",
          cause: "Dem Dienstkonto fehlt die Rolle ApplicationImpersonation, oder ihr Bereich schließt dieses Postfach aus. In Exchange Online wurde die Rolle abgeschafft: Reiner App-Zugriff braucht stattdessen die Berechtigung full_access_as_app.",
          remedy: "Lokal in der Exchange-Verwaltungsshell: `New-ManagementRoleAssignment -Name calpump-impersonation -Role ApplicationImpersonation -User <Dienstkonto>` (mit `-CustomRecipientWriteScope <Bereich>` auf Räume begrenzen). Rollenänderungen brauchen einige Minuten, bis sie repliziert und im EWS-Prozess angekommen sind; warten, dann `calpump profile test --wait`. In Exchange Online eine App-Registrierung mit full_access_as_app verwenden oder die Route zu Graph umziehen (`calpump migrate plan`)." });

entry!(ACCESS_DENIED, "ews.ErrorAccessDenied", retryable: false, permission: true,
    en: { title: "Access to the mailbox folder is denied",
          cause: "The account may sign in but has no right to read this mailbox's calendar: delegate access is configured and the folder permission is missing, or the mailbox is excluded by a scope.",
          remedy: "Grant read access to the calendar: `Add-MailboxFolderPermission -Identity <room>:\\Calendar -User <service account> -AccessRights Reviewer` (or use impersonation with `impersonation = true`). Changes take a few minutes to apply." },
    de: { title: "Zugriff auf den Postfachordner verweigert",
          cause: "Das Konto kann sich anmelden, darf den Kalender dieses Postfachs aber nicht lesen: Stellvertretungszugriff ist eingestellt und die Ordnerberechtigung fehlt, oder ein Bereich schließt das Postfach aus.",
          remedy: "Leserechte auf den Kalender erteilen: `Add-MailboxFolderPermission -Identity <Raum>:\\Calendar -User <Dienstkonto> -AccessRights Reviewer` (oder Identitätswechsel mit `impersonation = true`). Änderungen wirken nach einigen Minuten." });

entry!(NON_EXISTENT_MAILBOX, "ews.ErrorNonExistentMailbox", retryable: false,
    en: { title: "No mailbox with this address",
          cause: "Exchange knows no mailbox for this SMTP address: a typo, a removed room, or a mailbox in another forest or tenant.",
          remedy: "Check the address with `calpump mailboxes <profile>` or `Get-Mailbox <address>`; correct or remove it in the route's `mailboxes`." },
    de: { title: "Kein Postfach mit dieser Adresse",
          cause: "Exchange kennt für diese SMTP-Adresse kein Postfach: ein Tippfehler, ein entfernter Raum, oder ein Postfach in einer anderen Gesamtstruktur oder einem anderen Mandanten.",
          remedy: "Adresse mit `calpump mailboxes <profil>` oder `Get-Mailbox <adresse>` prüfen; in `mailboxes` der Route korrigieren oder entfernen." });

entry!(SERVER_BUSY, "ews.ErrorServerBusy", retryable: true,
    en: { title: "Exchange is busy (throttling)",
          cause: "Exchange's throttling policy asked calpump to back off for the time given in BackOffMilliseconds.",
          remedy: "Nothing to do when it is occasional: calpump waits as asked. If syncs fall behind, lower the profile's `max_concurrency`, lengthen the routes' `interval`, or give the service account its own throttling policy (`New-ThrottlingPolicy`, `Set-ThrottlingPolicyAssociation`)." },
    de: { title: "Exchange ist ausgelastet (Drosselung)",
          cause: "Die Drosselungsrichtlinie von Exchange hat calpump gebeten, für die in BackOffMilliseconds genannte Zeit zu pausieren.",
          remedy: "Gelegentlich ist das normal: calpump wartet wie verlangt. Fallen Synchronisierungen zurück, `max_concurrency` im Profil senken, das `interval` der Routen verlängern oder dem Dienstkonto eine eigene Drosselungsrichtlinie geben (`New-ThrottlingPolicy`, `Set-ThrottlingPolicyAssociation`)." });

entry!(EXCEEDED_CONNECTION_COUNT, "ews.ErrorExceededConnectionCount", retryable: true,
    en: { title: "Too many concurrent EWS connections",
          cause: "The account has more concurrent EWS requests open than its throttling policy allows (EwsMaxConcurrency).",
          remedy: "calpump lowers its concurrency for this server by itself. To avoid it, set the profile's `max_concurrency` below the policy's EwsMaxConcurrency (default 27 on-premises, lower in Exchange Online)." },
    de: { title: "Zu viele gleichzeitige EWS-Verbindungen",
          cause: "Das Konto hat mehr gleichzeitige EWS-Anfragen offen, als seine Drosselungsrichtlinie erlaubt (EwsMaxConcurrency).",
          remedy: "calpump senkt die Parallelität für diesen Server selbst. Zur Vermeidung `max_concurrency` im Profil unter EwsMaxConcurrency der Richtlinie setzen (lokal standardmäßig 27, in Exchange Online weniger)." });

entry!(INVALID_SYNC_STATE, "ews.ErrorInvalidSyncStateData", retryable: true,
    en: { title: "The stored EWS sync state is no longer valid",
          cause: "Exchange refused the SyncState from the last run (the mailbox moved, or the state is too old).",
          remedy: "Nothing to do: calpump re-reads the calendar window in full and loses nothing." },
    de: { title: "Der gespeicherte EWS-Synchronisierungsstand ist ungültig",
          cause: "Exchange lehnt den SyncState des letzten Laufs ab (Postfach verschoben oder Stand zu alt).",
          remedy: "Nichts zu tun: calpump liest das Kalenderfenster vollständig neu und verliert nichts." });

entry!(UNAUTHORIZED, "ews.Unauthorized", retryable: false,
    en: { title: "Exchange refused the credentials (HTTP 401)",
          cause: "The user name or password is wrong, the account is locked, or the server does not offer the profile's authentication scheme (e.g. Basic is disabled and only NTLM/Negotiate is offered; the detail lists what the server offered). With OAuth, the token lacks full_access_as_app or EWS.AccessAsUser.All.",
          remedy: "Check the user name format (DOMAIN\\user or the UPN) and the password; set `auth.kind` to a scheme the server offers (`ntlm` when it offers NTLM or Negotiate). For OAuth, add the Office 365 Exchange Online permission and grant admin consent." },
    de: { title: "Exchange hat die Anmeldedaten abgelehnt (HTTP 401)",
          cause: "Benutzername oder Kennwort sind falsch, das Konto ist gesperrt, oder der Server bietet das Anmeldeverfahren des Profils nicht an (z. B. Basic abgeschaltet, nur NTLM/Negotiate; das Detail nennt die angebotenen Verfahren). Bei OAuth fehlt dem Token full_access_as_app bzw. EWS.AccessAsUser.All.",
          remedy: "Format des Benutzernamens (DOMÄNE\\benutzer oder UPN) und Kennwort prüfen; `auth.kind` auf ein angebotenes Verfahren setzen (`ntlm`, wenn NTLM oder Negotiate angeboten wird). Bei OAuth die Berechtigung für Office 365 Exchange Online hinzufügen und die Administratorzustimmung erteilen." });

entry!(EWS_DISABLED, "ews.EwsDisabled", retryable: false, permission: true,
    en: { title: "EWS is switched off for this tenant, mailbox or app",
          cause: "The server refused the EWS request with HTTP 403 Forbidden and no EWS error: Exchange Online blocks EWS for apps that are not on the tenant's allow list (EwsAllowedAppIDs) since 1 October 2026 and switches EWS off for everyone on 1 April 2027; before that, Microsoft's temporary EWS shut-offs answer the same way. On-premises and in Exchange Online, EwsEnabled = $false on the organisation or the mailbox, or an EwsApplicationAccessPolicy that does not list calpump, gives the same answer.",
          remedy: "Move the route to Microsoft Graph: `calpump migrate plan --route <route> --to <graph profile>`, then verify and switch. Until then an administrator can check `Get-OrganizationConfig | fl Ews*` and `Get-CASMailbox <mailbox> | fl Ews*`, and allow the app where Microsoft still permits it: `Set-OrganizationConfig -EwsEnabled $true` and `Set-OrganizationConfig -EwsAllowedAppIDs \"<application id>\"` (on-premises: `Set-CASMailbox <mailbox> -EwsEnabled $true`, or add calpump's user agent `calpump/*` to EwsAllowList)." },
    de: { title: "EWS ist für diesen Mandanten, dieses Postfach oder diese App abgeschaltet",
          cause: "Der Server hat die EWS-Anfrage mit HTTP 403 Forbidden ohne EWS-Fehler abgelehnt: Exchange Online sperrt EWS seit dem 1. Oktober 2026 für Apps, die nicht auf der Freigabeliste des Mandanten (EwsAllowedAppIDs) stehen, und schaltet EWS am 1. April 2027 für alle ab; vorher antworten Microsofts vorübergehende EWS-Abschaltungen genauso. Lokal und in Exchange Online führt EwsEnabled = $false für die Organisation oder das Postfach, oder eine EwsApplicationAccessPolicy ohne calpump, zur selben Antwort.",
          remedy: "Die Route zu Microsoft Graph umziehen: `calpump migrate plan --route <route> --to <Graph-Profil>`, dann prüfen und umschalten. Bis dahin kann ein Administrator `Get-OrganizationConfig | fl Ews*` und `Get-CASMailbox <Postfach> | fl Ews*` prüfen und die App freigeben, solange Microsoft das zulässt: `Set-OrganizationConfig -EwsEnabled $true` und `Set-OrganizationConfig -EwsAllowedAppIDs \"<Anwendungs-ID>\"` (lokal: `Set-CASMailbox <Postfach> -EwsEnabled $true` oder calpumps User-Agent `calpump/*` in die EwsAllowList aufnehmen)." });

entry!(SERVER_TRANSIENT, "ews.ServerTransient", retryable: true,
    en: { title: "Exchange reported a passing failure",
          cause: "EWS answered with a ResponseCode that means the mailbox database or a server behind EWS was briefly unavailable (ErrorMailboxStoreUnavailable, ErrorInternalServerTransientError, ErrorMailboxMoveInProgress, ErrorTimeoutExpired, ErrorConnectionFailed).",
          remedy: "Nothing to do when it is occasional: calpump retries with back-off and loses nothing. If it persists for one mailbox, check the mailbox database's health and whether the mailbox is being moved." },
    de: { title: "Exchange meldet einen vorübergehenden Fehler",
          cause: "EWS hat mit einem ResponseCode geantwortet, der bedeutet, dass die Postfachdatenbank oder ein Server hinter EWS kurz nicht verfügbar war (ErrorMailboxStoreUnavailable, ErrorInternalServerTransientError, ErrorMailboxMoveInProgress, ErrorTimeoutExpired, ErrorConnectionFailed).",
          remedy: "Gelegentlich ist das normal: calpump wiederholt mit wachsender Wartezeit und verliert nichts. Hält es für ein Postfach an, den Zustand der Postfachdatenbank prüfen und ob das Postfach gerade verschoben wird." });

entry!(INVALID_SERVER_VERSION, "ews.InvalidServerVersion", retryable: false,
    en: { title: "Exchange does not accept the requested schema version",
          cause: "The profile's `server_version` (sent as RequestServerVersion) is unknown to this Exchange or too old for the properties calpump reads (ErrorInvalidServerVersion, ErrorIncorrectSchemaVersion, ErrorSchemaValidation).",
          remedy: "Remove `server_version` from the profile to use the default (Exchange2013_SP1, accepted by Exchange 2013 and later and by Exchange Online), or set it to a value the server lists in its EwsSupportedSchemas." },
    de: { title: "Exchange akzeptiert die angeforderte Schemaversion nicht",
          cause: "Die `server_version` des Profils (gesendet als RequestServerVersion) kennt dieser Exchange nicht, oder sie ist zu alt für die Eigenschaften, die calpump liest (ErrorInvalidServerVersion, ErrorIncorrectSchemaVersion, ErrorSchemaValidation).",
          remedy: "`server_version` aus dem Profil entfernen, um den Standard zu verwenden (Exchange2013_SP1, den Exchange 2013 und neuer sowie Exchange Online annehmen), oder einen Wert setzen, den der Server in EwsSupportedSchemas nennt." });

entry!(AUTODISCOVER_FAILED, "ews.AutodiscoverFailed", retryable: true,
    en: { title: "Autodiscover found no EWS URL",
          cause: "None of the Autodiscover endpoints for the address's domain answered with an EWS URL: DNS has no autodiscover record, the endpoints need other credentials, or they redirect in a loop.",
          remedy: "Set the profile's `url` to the EWS URL directly (https://<mail server>/EWS/Exchange.asmx; Exchange Online: https://outlook.office365.com/EWS/Exchange.asmx). The detail lists each URL tried and its answer." },
    de: { title: "Autodiscover hat keine EWS-URL gefunden",
          cause: "Keiner der Autodiscover-Endpunkte der Domäne hat eine EWS-URL geliefert: DNS kennt keinen Autodiscover-Eintrag, die Endpunkte verlangen andere Anmeldedaten, oder sie leiten im Kreis um.",
          remedy: "`url` im Profil direkt auf die EWS-URL setzen (https://<Mailserver>/EWS/Exchange.asmx; Exchange Online: https://outlook.office365.com/EWS/Exchange.asmx). Das Detail nennt jede versuchte URL und ihre Antwort." });

entry!(OTHER, "ews.Other", retryable: false,
    en: { title: "Exchange returned an error",
          cause: "EWS answered with a ResponseCode calpump has no specific advice for; the code and message are in the detail.",
          remedy: "Look the ResponseCode up in Microsoft's EWS ResponseCode reference; if it names a permission or a quota, fix that for the service account." },
    de: { title: "Exchange meldet einen Fehler",
          cause: "EWS hat mit einem ResponseCode geantwortet, für den calpump keinen eigenen Rat hat; Code und Meldung stehen im Detail.",
          remedy: "Den ResponseCode in Microsofts EWS-Referenz 'ResponseCode' nachschlagen; nennt er eine Berechtigung oder ein Kontingent, das für das Dienstkonto beheben." });

entry!(IMPERSONATION_HEADER_MISSING, "ews.ErrorInvalidExchangeImpersonationHeaderData", retryable: false,
    en: { title: "App-only access needs impersonation",
          cause: "The token is app-only (client credentials with full_access_as_app), and Exchange accepts such a token only together with an ExchangeImpersonation header naming the mailbox; the profile says `impersonation = false`.",
          remedy: "Remove `impersonation = false` from the profile (app-only tokens impersonate by default), or use the password grant with delegate access instead." },
    de: { title: "Reiner App-Zugriff braucht Identitätswechsel",
          cause: "Das Token ist ein reines App-Token (Client-Anmeldeinformationen mit full_access_as_app), und Exchange akzeptiert es nur zusammen mit einem ExchangeImpersonation-Header, der das Postfach nennt; im Profil steht `impersonation = false`.",
          remedy: "`impersonation = false` aus dem Profil entfernen (App-Tokens verwenden standardmäßig Identitätswechsel) oder stattdessen den Kennwort-Grant mit Stellvertretungszugriff verwenden." });

entry!(NAME_RESOLUTION_NO_RESULTS, "ews.ErrorNameResolutionNoResults", retryable: false,
    en: { title: "The directory knows no such address",
          cause: "Exchange's address book has no entry for this address or room list: a typo, a room list that is not a room list (a normal distribution group), or an entry hidden from the address lists.",
          remedy: "List what exists with `calpump mailboxes <profile>`; on-premises check with `Get-DistributionGroup -RecipientTypeDetails RoomList` and `Get-Mailbox <address>`, and that the object is not hidden from address lists (HiddenFromAddressListsEnabled)." },
    de: { title: "Das Verzeichnis kennt diese Adresse nicht",
          cause: "Das Adressbuch von Exchange hat keinen Eintrag für diese Adresse oder Raumliste: ein Tippfehler, eine Raumliste, die keine ist (eine normale Verteilergruppe), oder ein in den Adresslisten ausgeblendeter Eintrag.",
          remedy: "Vorhandenes mit `calpump mailboxes <profil>` auflisten; lokal mit `Get-DistributionGroup -RecipientTypeDetails RoomList` und `Get-Mailbox <adresse>` prüfen, und dass das Objekt nicht aus den Adresslisten ausgeblendet ist (HiddenFromAddressListsEnabled)." });

entry!(FOLDER_NOT_FOUND, "ews.ErrorFolderNotFound", retryable: false,
    en: { title: "The calendar folder does not exist",
          cause: "The mailbox has no calendar folder under this id or name: a sub-calendar was deleted or renamed, or the mailbox was never opened and has no calendar yet.",
          remedy: "List the mailbox's calendars with `calpump mailboxes <profile> --filter <address>` and correct the route's `calendars`; for a mailbox without a calendar, open it once in Outlook on the web or remove it from the route." },
    de: { title: "Der Kalenderordner existiert nicht",
          cause: "Das Postfach hat unter dieser ID oder diesem Namen keinen Kalenderordner: Ein Unterkalender wurde gelöscht oder umbenannt, oder das Postfach wurde nie geöffnet und hat noch keinen Kalender.",
          remedy: "Die Kalender des Postfachs mit `calpump mailboxes <profil> --filter <adresse>` auflisten und `calendars` der Route korrigieren; ein Postfach ohne Kalender einmal in Outlook im Web öffnen oder aus der Route entfernen." });

entry!(ITEM_NOT_FOUND, "ews.ErrorItemNotFound", retryable: true,
    en: { title: "The item is gone",
          cause: "An item calpump was about to read was deleted or moved in the meantime.",
          remedy: "Nothing to do: the next sync notices the change and reads the calendar again." },
    de: { title: "Das Element ist verschwunden",
          cause: "Ein Element, das calpump lesen wollte, wurde inzwischen gelöscht oder verschoben.",
          remedy: "Nichts zu tun: Die nächste Synchronisierung bemerkt die Änderung und liest den Kalender erneut." });

entry!(CALENDAR_VIEW_RANGE_TOO_BIG, "ews.ErrorCalendarViewRangeTooBig", retryable: false,
    en: { title: "The route's window is too long for EWS",
          cause: "EWS answers a calendar view of at most two years; the route's window (past_days + future_days) is longer.",
          remedy: "Shorten the route's `window` so that past_days + future_days stays below 700 days." },
    de: { title: "Das Zeitfenster der Route ist für EWS zu lang",
          cause: "EWS beantwortet eine Kalenderansicht über höchstens zwei Jahre; das Fenster der Route (past_days + future_days) ist länger.",
          remedy: "`window` der Route verkürzen, sodass past_days + future_days unter 700 Tagen bleibt." });

entry!(EXCEEDED_FIND_COUNT_LIMIT, "ews.ErrorExceededFindCountLimit", retryable: true,
    en: { title: "Too many items in one view",
          cause: "The calendar view held more items than Exchange returns at once (EWSFindCountLimit, 1000 by default).",
          remedy: "Nothing to do normally: calpump splits the window into smaller views. If it repeats for one very busy calendar, shorten the route's `window`." },
    de: { title: "Zu viele Elemente in einer Ansicht",
          cause: "Die Kalenderansicht enthielt mehr Elemente, als Exchange auf einmal liefert (EWSFindCountLimit, standardmäßig 1000).",
          remedy: "Normalerweise nichts zu tun: calpump teilt das Fenster in kleinere Ansichten. Wiederholt es sich bei einem sehr vollen Kalender, `window` der Route verkürzen." });

entry!(TOKEN_LACKS_PERMISSION, "ews.TokenLacksPermission", retryable: false, permission: true,
    en: { title: "The token does not carry the EWS permission",
          cause: "Exchange Online accepted the sign-in but the token has no EWS permission (x-ms-diagnostics 2000008): the app lacks full_access_as_app (client credentials) or EWS.AccessAsUser.All (password grant), or admin consent for it is missing.",
          remedy: "In Microsoft Entra admin center open App registrations > (the app) > API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online, add the application permission full_access_as_app (or the delegated EWS.AccessAsUser.All for the password grant), then click 'Grant admin consent for (tenant)'. New tokens carry it after a few minutes." },
    de: { title: "Das Token trägt die EWS-Berechtigung nicht",
          cause: "Exchange Online hat die Anmeldung angenommen, aber das Token hat keine EWS-Berechtigung (x-ms-diagnostics 2000008): Der App fehlt full_access_as_app (Client-Anmeldeinformationen) bzw. EWS.AccessAsUser.All (Kennwort-Grant), oder die Administratorzustimmung dafür fehlt.",
          remedy: "Im Microsoft Entra Admin Center unter App-Registrierungen > (App) > API-Berechtigungen > Berechtigung hinzufügen > Von meiner Organisation verwendete APIs > Office 365 Exchange Online die Anwendungsberechtigung full_access_as_app (bzw. die delegierte EWS.AccessAsUser.All beim Kennwort-Grant) hinzufügen, dann 'Administratorzustimmung für (Mandant) erteilen' klicken. Neue Tokens tragen sie nach einigen Minuten." });

entry!(APP_ONLY_NEEDS_MAILBOX, "ews.AppOnlyNeedsMailbox", retryable: false,
    en: { title: "Room lists through EWS need a mailbox to act as",
          cause: "The profile signs in app-only (client credentials with full_access_as_app). Exchange Online accepts such a token only together with an impersonated mailbox (ExchangeImpersonation and X-AnchorMailbox), also for calls that concern the organisation rather than a mailbox: GetRoomLists, GetRooms, ResolveNames. The profile names no `probe_mailbox`, and no mailbox had been read through it yet to act as.",
          remedy: "Set `probe_mailbox` in the profile to any mailbox the app may read, e.g. one of the rooms: `probe_mailbox = \"room-1.01@contoso.com\"`. calpump then acts as it for room lists and name lookups (and `calpump profile test` reads it). Without it, the first mailbox read serves — so a route that names only `room_lists`, no `mailboxes`, cannot list its rooms." },
    de: { title: "Raumlisten über EWS brauchen ein Postfach, als das gehandelt wird",
          cause: "Das Profil meldet sich als reine App an (Client-Anmeldeinformationen mit full_access_as_app). Exchange Online akzeptiert ein solches Token nur zusammen mit einem Postfach, dessen Identität angenommen wird (ExchangeImpersonation und X-AnchorMailbox), auch bei Aufrufen, die die Organisation statt eines Postfachs betreffen: GetRoomLists, GetRooms, ResolveNames. Das Profil nennt kein `probe_mailbox`, und über es wurde noch kein Postfach gelesen, das dafür dienen könnte.",
          remedy: "Im Profil `probe_mailbox` auf ein Postfach setzen, das die App lesen darf, z. B. einen der Räume: `probe_mailbox = \"raum-1.01@contoso.com\"`. calpump handelt dann für Raumlisten und Namenssuchen als dieses Postfach (und `calpump profile test` liest es). Ohne es dient das erste gelesene Postfach — eine Route, die nur `room_lists` und keine `mailboxes` nennt, kann ihre Räume daher nicht auflisten." });

pub static ALL: &[&crate::diagnostics::DiagnosticInfo] = &[
    &IMPERSONATE_USER_DENIED,
    &ACCESS_DENIED,
    &NON_EXISTENT_MAILBOX,
    &SERVER_BUSY,
    &EXCEEDED_CONNECTION_COUNT,
    &INVALID_SYNC_STATE,
    &UNAUTHORIZED,
    &EWS_DISABLED,
    &SERVER_TRANSIENT,
    &INVALID_SERVER_VERSION,
    &AUTODISCOVER_FAILED,
    &OTHER,
    &IMPERSONATION_HEADER_MISSING,
    &NAME_RESOLUTION_NO_RESULTS,
    &FOLDER_NOT_FOUND,
    &ITEM_NOT_FOUND,
    &CALENDAR_VIEW_RANGE_TOO_BIG,
    &EXCEEDED_FIND_COUNT_LIMIT,
    &TOKEN_LACKS_PERMISSION,
    &APP_ONLY_NEEDS_MAILBOX,
];
