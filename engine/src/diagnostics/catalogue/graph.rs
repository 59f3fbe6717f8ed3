//! Microsoft Graph: error codes of the `{"error":{"code","message"}}` body and HTTP answers.
//! Source: microsoft-graph-docs-contrib, `concepts/errors.md`, `concepts/auth-limit-mailbox-access.md`.

entry!(ACCESS_DENIED, "graph.ErrorAccessDenied", retryable: false, permission: true,
    en: { title: "The app lacks the Graph permission for this call",
          cause: "The access token carries no role that allows this request: the application permission (Calendars.Read for calendars, Place.Read.All for rooms and room lists) is missing or has not been consented.",
          remedy: "In Microsoft Entra admin center open App registrations > (the app) > API permissions > Add a permission > Microsoft Graph > Application permissions, add Calendars.Read and Place.Read.All, then 'Grant admin consent'. Command line: `az ad app permission add --id <client-id> --api 00000003-0000-0000-c000-000000000000 --api-permissions <permission-id>=Role` and `az ad app permission admin-consent --id <client-id>`. New tokens carry the roles after a few minutes." },
    de: { title: "Der App fehlt die Graph-Berechtigung für diesen Aufruf",
          cause: "Das Zugriffstoken trägt keine Rolle, die diese Anfrage erlaubt: Die Anwendungsberechtigung (Calendars.Read für Kalender, Place.Read.All für Räume und Raumlisten) fehlt oder wurde nicht zugestimmt.",
          remedy: "Im Microsoft Entra Admin Center unter App-Registrierungen > (App) > API-Berechtigungen > Berechtigung hinzufügen > Microsoft Graph > Anwendungsberechtigungen Calendars.Read und Place.Read.All hinzufügen, dann 'Administratorzustimmung erteilen'. Befehlszeile: `az ad app permission add --id <client-id> --api 00000003-0000-0000-c000-000000000000 --api-permissions <permission-id>=Role` und `az ad app permission admin-consent --id <client-id>`. Neue Tokens tragen die Rollen nach einigen Minuten." });

entry!(ODATA_DISABLED, "graph.MailboxOutOfScope", retryable: false, permission: true,
    en: { title: "The app may not read this mailbox (\"Access to OData is disabled\")",
          cause: "Exchange Online limits the app to a set of mailboxes (RBAC for Applications management scope, or an application access policy) and this mailbox is outside it.",
          remedy: "Add the mailbox to the group or filter the scope uses, e.g. `Add-DistributionGroupMember -Identity calpump-rooms -Member <room>` for a policy created with `New-ApplicationAccessPolicy -AppId <client-id> -PolicyScopeGroupId calpump-rooms -AccessRight RestrictAccess`, or widen the management scope of `New-ManagementRoleAssignment -App <client-id> -Role 'Application Calendars.Read' -CustomResourceScope <scope>`. Check with `Test-ServicePrincipalAuthorization` or `Test-ApplicationAccessPolicy`. Changes can take 30 minutes to 2 hours to apply." },
    de: { title: "Die App darf dieses Postfach nicht lesen (\"Access to OData is disabled\")",
          cause: "Exchange Online beschränkt die App auf eine Menge von Postfächern (RBAC für Anwendungen mit Verwaltungsbereich oder eine Anwendungszugriffsrichtlinie), und dieses Postfach liegt außerhalb.",
          remedy: "Das Postfach in die Gruppe oder den Filter des Bereichs aufnehmen, z. B. `Add-DistributionGroupMember -Identity calpump-rooms -Member <Raum>` bei einer Richtlinie aus `New-ApplicationAccessPolicy -AppId <client-id> -PolicyScopeGroupId calpump-rooms -AccessRight RestrictAccess`, oder den Verwaltungsbereich von `New-ManagementRoleAssignment -App <client-id> -Role 'Application Calendars.Read' -CustomResourceScope <Bereich>` erweitern. Prüfen mit `Test-ServicePrincipalAuthorization` oder `Test-ApplicationAccessPolicy`. Änderungen brauchen 30 Minuten bis 2 Stunden." });

entry!(MAILBOX_NOT_ENABLED_FOR_REST, "graph.MailboxNotEnabledForRESTAPI", retryable: false,
    en: { title: "The mailbox is not in Exchange Online",
          cause: "Graph can read only mailboxes hosted in Exchange Online; this one is still on-premises in a hybrid organisation (or is inactive or soft-deleted).",
          remedy: "Keep this mailbox on a route with an EWS profile that points at the on-premises server; `calpump migrate plan` lists such mailboxes and proposes the split. After the mailbox is moved to Exchange Online it can join the Graph route." },
    de: { title: "Das Postfach liegt nicht in Exchange Online",
          cause: "Graph kann nur Postfächer in Exchange Online lesen; dieses liegt in einer Hybridumgebung noch lokal (oder ist inaktiv bzw. vorläufig gelöscht).",
          remedy: "Dieses Postfach auf einer Route mit einem EWS-Profil für den lokalen Server lassen; `calpump migrate plan` listet solche Postfächer und schlägt die Aufteilung vor. Nach dem Umzug nach Exchange Online kann es zur Graph-Route wechseln." });

entry!(NOT_FOUND, "graph.NotFound", retryable: false,
    en: { title: "No such mailbox or item",
          cause: "Graph knows no user or mailbox with this address (a typo, a deleted room, or an address that is only an alias in another tenant), or the item was deleted meanwhile.",
          remedy: "Check the address with `calpump mailboxes <profile>` or in the Microsoft 365 admin center; correct or remove it in the route's `mailboxes`." },
    de: { title: "Kein solches Postfach oder Element",
          cause: "Graph kennt keinen Benutzer und kein Postfach mit dieser Adresse (ein Tippfehler, ein gelöschter Raum, oder eine Adresse, die nur Alias in einem anderen Mandanten ist), oder das Element wurde inzwischen gelöscht.",
          remedy: "Adresse mit `calpump mailboxes <profil>` oder im Microsoft 365 Admin Center prüfen; in `mailboxes` der Route korrigieren oder entfernen." });

entry!(THROTTLED, "graph.Throttled", retryable: true,
    en: { title: "Microsoft Graph throttles the app",
          cause: "Graph answered 429 or 503: the app exceeded a per-mailbox or per-tenant limit (at most 4 concurrent requests per mailbox for Outlook resources).",
          remedy: "Nothing to do when it is occasional: calpump waits as Retry-After asks. If syncs fall behind, lengthen the routes' `interval` or lower the profile's `max_concurrency`." },
    de: { title: "Microsoft Graph drosselt die App",
          cause: "Graph hat 429 oder 503 geantwortet: Die App hat eine Grenze pro Postfach oder Mandant überschritten (höchstens 4 gleichzeitige Anfragen pro Postfach für Outlook-Ressourcen).",
          remedy: "Gelegentlich ist das normal: calpump wartet wie Retry-After verlangt. Fallen Synchronisierungen zurück, das `interval` der Routen verlängern oder `max_concurrency` im Profil senken." });

entry!(SYNC_STATE_NOT_FOUND, "graph.SyncStateNotFound", retryable: true,
    en: { title: "The stored delta link has expired",
          cause: "Graph no longer knows the delta token (410 Gone / syncStateNotFound), typically after a long pause or a mailbox move.",
          remedy: "Nothing to do: calpump drops the token, re-reads the window in full and loses nothing." },
    de: { title: "Der gespeicherte Delta-Link ist abgelaufen",
          cause: "Graph kennt das Delta-Token nicht mehr (410 Gone / syncStateNotFound), meist nach langer Pause oder einer Postfachverschiebung.",
          remedy: "Nichts zu tun: calpump verwirft das Token, liest das Fenster vollständig neu und verliert nichts." });

entry!(INVALID_TOKEN, "graph.InvalidAuthenticationToken", retryable: true,
    en: { title: "Graph refused the access token",
          cause: "The token expired, was issued for another audience (not https://graph.microsoft.com), or was revoked.",
          remedy: "calpump fetches a new token and retries once. If it persists, check that the profile's scope is https://graph.microsoft.com/.default and that `graph_url` and `authority` belong to the same cloud." },
    de: { title: "Graph hat das Zugriffstoken abgelehnt",
          cause: "Das Token ist abgelaufen, wurde für eine andere Zielgruppe ausgestellt (nicht https://graph.microsoft.com) oder widerrufen.",
          remedy: "calpump holt ein neues Token und versucht es einmal erneut. Hält es an, prüfen, dass der Scope des Profils https://graph.microsoft.com/.default ist und `graph_url` und `authority` zur selben Cloud gehören." });

entry!(OTHER, "graph.Other", retryable: false,
    en: { title: "Microsoft Graph returned an error",
          cause: "Graph answered with an error code calpump has no specific advice for; the code, message and request id are in the detail.",
          remedy: "Look the code up in the Microsoft Graph error reference; keep the request id from the detail for a support case." },
    de: { title: "Microsoft Graph meldet einen Fehler",
          cause: "Graph hat mit einem Fehlercode geantwortet, für den calpump keinen eigenen Rat hat; Code, Meldung und Request-ID stehen im Detail.",
          remedy: "Den Code in der Fehlerreferenz von Microsoft Graph nachschlagen; die Request-ID aus dem Detail für einen Supportfall aufheben." });

entry!(NO_PERMISSIONS_IN_TOKEN, "graph.NoPermissionsInToken", retryable: false, permission: true,
    en: { title: "The access token carries no permissions",
          cause: "Microsoft Entra ID issued the token without any application role (or delegated scope), so Graph refuses every call (401 \"Either scp or roles claim need to be present in the token\"). For client credentials this means admin consent for the app's application permissions was never granted or was revoked.",
          remedy: "In Microsoft Entra admin center open App registrations > (the app) > API permissions, make sure Microsoft Graph application permissions Calendars.Read and Place.Read.All are listed, then click 'Grant admin consent for <tenant>'. Command line: `az ad app permission admin-consent --id <client-id>`. New tokens carry the roles after a few minutes; run `calpump profile test` again." },
    de: { title: "Das Zugriffstoken trägt keine Berechtigungen",
          cause: "Microsoft Entra ID hat das Token ohne Anwendungsrolle (bzw. delegierten Bereich) ausgestellt, daher lehnt Graph jeden Aufruf ab (401 \"Either scp or roles claim need to be present in the token\"). Bei Client-Anmeldeinformationen heißt das: Die Administratorzustimmung für die Anwendungsberechtigungen der App wurde nie erteilt oder wurde widerrufen.",
          remedy: "Im Microsoft Entra Admin Center unter App-Registrierungen > (App) > API-Berechtigungen prüfen, dass die Microsoft-Graph-Anwendungsberechtigungen Calendars.Read und Place.Read.All eingetragen sind, dann 'Administratorzustimmung für <Mandant> erteilen' klicken. Befehlszeile: `az ad app permission admin-consent --id <client-id>`. Neue Tokens tragen die Rollen nach einigen Minuten; danach `calpump profile test` erneut ausführen." });

entry!(AUTHORIZATION_REQUEST_DENIED, "graph.AuthorizationRequestDenied", retryable: false, permission: true,
    en: { title: "The app may not read the directory",
          cause: "A directory call (users) was refused with Authorization_RequestDenied: the app has no User.Read.All. calpump does not need it — rooms come from Place.Read.All and mailboxes are proven through their calendar — so this only matters where a feature asks for it.",
          remedy: "Usually nothing: calpump falls back to reading the mailbox's calendar. If you want names of configured user mailboxes shown, add the Microsoft Graph application permission User.Read.All under App registrations > (the app) > API permissions and grant admin consent." },
    de: { title: "Die App darf das Verzeichnis nicht lesen",
          cause: "Ein Verzeichnisaufruf (users) wurde mit Authorization_RequestDenied abgelehnt: Die App hat kein User.Read.All. calpump braucht es nicht — Räume kommen über Place.Read.All, Postfächer werden über ihren Kalender nachgewiesen —, es zählt also nur, wo eine Funktion danach fragt.",
          remedy: "Meist nichts: calpump liest stattdessen den Kalender des Postfachs. Sollen die Namen konfigurierter Benutzerpostfächer erscheinen, unter App-Registrierungen > (App) > API-Berechtigungen die Microsoft-Graph-Anwendungsberechtigung User.Read.All hinzufügen und die Administratorzustimmung erteilen." });

entry!(BAD_REQUEST, "graph.BadRequest", retryable: false,
    en: { title: "Graph refused the request as invalid",
          cause: "Graph answered 400 Bad Request: a query option or value this Graph endpoint does not support — typical for a national cloud or a `graph_url` that does not end in /v1.0 — or a calpump defect.",
          remedy: "Check that `graph_url` ends in the API version (https://graph.microsoft.com/v1.0 or your national cloud's). If it does, report the detail (code, message, request id) to calpump's maintainers." },
    de: { title: "Graph hat die Anfrage als ungültig abgelehnt",
          cause: "Graph antwortete mit 400 Bad Request: eine Abfrageoption oder ein Wert, den dieser Graph-Endpunkt nicht unterstützt — typisch für eine nationale Cloud oder eine `graph_url` ohne /v1.0 am Ende — oder ein Fehler in calpump.",
          remedy: "Prüfen, dass `graph_url` auf die API-Version endet (https://graph.microsoft.com/v1.0 bzw. die Ihrer nationalen Cloud). Ist das so, das Detail (Code, Meldung, Request-ID) an die Betreuer von calpump melden." });

pub static ALL: &[&crate::diagnostics::DiagnosticInfo] = &[
    &ACCESS_DENIED,
    &ODATA_DISABLED,
    &MAILBOX_NOT_ENABLED_FOR_REST,
    &NOT_FOUND,
    &THROTTLED,
    &SYNC_STATE_NOT_FOUND,
    &INVALID_TOKEN,
    &OTHER,
    &NO_PERMISSIONS_IN_TOKEN,
    &AUTHORIZATION_REQUEST_DENIED,
    &BAD_REQUEST,
];
