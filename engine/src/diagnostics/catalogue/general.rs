//! Failures that are not specific to one Microsoft service: network, HTTP, malformed answers,
//! configuration, secrets, the sync's own safety rules, sinks and plugins.

entry!(DNS, "net.Dns", retryable: true,
    en: { title: "Host name not found",
          cause: "The server's host name does not resolve: a typo in the URL, a DNS server that does not know internal names, or a missing Autodiscover record.",
          remedy: "Check the host name in the profile (`url`, `authority`, `graph_url`). From the machine running calpump, try `nslookup <host>`; if it fails, fix DNS or use a name this machine can resolve." },
    de: { title: "Hostname nicht gefunden",
          cause: "Der Hostname des Servers lässt sich nicht auflösen: ein Tippfehler in der URL, ein DNS-Server, der interne Namen nicht kennt, oder ein fehlender Autodiscover-Eintrag.",
          remedy: "Prüfen Sie den Hostnamen im Profil (`url`, `authority`, `graph_url`). Testen Sie auf dem calpump-Rechner `nslookup <host>`; schlägt das fehl, DNS korrigieren oder einen auflösbaren Namen verwenden." });

entry!(CONNECT, "net.Connect", retryable: true,
    en: { title: "Connection failed",
          cause: "The server did not accept a connection: it is down, a firewall or proxy blocks the port, or the URL names the wrong port.",
          remedy: "Check that the server is up and that this machine may reach it on the URL's port (`curl -v <url>`). If an outbound proxy is required, set HTTPS_PROXY for calpump." },
    de: { title: "Verbindung fehlgeschlagen",
          cause: "Der Server hat keine Verbindung angenommen: Er ist nicht erreichbar, eine Firewall oder ein Proxy sperrt den Port, oder die URL nennt den falschen Port.",
          remedy: "Prüfen Sie, ob der Server läuft und dieser Rechner ihn auf dem Port der URL erreicht (`curl -v <url>`). Ist ein Proxy nötig, setzen Sie HTTPS_PROXY für calpump." });

entry!(TLS, "net.Tls", retryable: false,
    en: { title: "TLS handshake or certificate problem",
          cause: "The server's certificate is not trusted (self-signed or an internal CA this machine does not know), expired, or issued for another host name; or a TLS-inspecting proxy replaced it.",
          remedy: "Install the issuing CA into the system trust store of this machine (Debian: copy it to /usr/local/share/ca-certificates/ and run update-ca-certificates), or use the host name the certificate was issued for. Do not turn off verification." },
    de: { title: "TLS-Handshake- oder Zertifikatsproblem",
          cause: "Das Serverzertifikat wird nicht vertraut (selbstsigniert oder von einer internen CA, die dieser Rechner nicht kennt), ist abgelaufen oder auf einen anderen Hostnamen ausgestellt; oder ein TLS-prüfender Proxy hat es ersetzt.",
          remedy: "Installieren Sie die ausstellende CA im System-Zertifikatsspeicher (Debian: nach /usr/local/share/ca-certificates/ kopieren und update-ca-certificates ausführen) oder verwenden Sie den Hostnamen aus dem Zertifikat. Schalten Sie die Prüfung nicht ab." });

entry!(TIMEOUT, "net.Timeout", retryable: true,
    en: { title: "The server did not answer in time",
          cause: "The request took longer than the configured timeout: the server is overloaded, the network is slow, or a proxy holds the connection.",
          remedy: "Usually passing; calpump retries. If it persists, check the server's load and the network path, or raise the profile's `timeout`." },
    de: { title: "Der Server hat nicht rechtzeitig geantwortet",
          cause: "Die Anfrage dauerte länger als das eingestellte Zeitlimit: Der Server ist überlastet, das Netz langsam, oder ein Proxy hält die Verbindung fest.",
          remedy: "Meist vorübergehend; calpump versucht es erneut. Hält es an, Last des Servers und Netzweg prüfen oder `timeout` im Profil erhöhen." });

entry!(HTML_INSTEAD_OF_API, "http.HtmlInsteadOfApi", retryable: false,
    en: { title: "An HTML page came back where the API was expected",
          cause: "Something between calpump and the server answered with a web page: a proxy or firewall login page, a captive portal, a load balancer's error page, or a URL that points at Outlook on the web instead of the API.",
          remedy: "Open the URL from the detail in a browser on this machine to see the page. Exempt the service's URL from proxy authentication, or correct the URL (EWS ends in /EWS/Exchange.asmx; Graph is the v1.0 base)." },
    de: { title: "HTML-Seite statt API-Antwort erhalten",
          cause: "Etwas zwischen calpump und dem Server hat mit einer Webseite geantwortet: eine Anmeldeseite eines Proxys oder einer Firewall, ein Captive Portal, eine Fehlerseite des Load Balancers oder eine URL, die auf Outlook im Web statt auf die API zeigt.",
          remedy: "Öffnen Sie die URL aus dem Detail auf diesem Rechner im Browser, um die Seite zu sehen. Nehmen Sie die URL von der Proxy-Anmeldung aus oder korrigieren Sie sie (EWS endet auf /EWS/Exchange.asmx; Graph ist die v1.0-Basis)." });

entry!(SERVER_ERROR, "http.ServerError", retryable: true,
    en: { title: "The server reported an internal error",
          cause: "The server answered with a 5xx status: a passing failure on its side or a bug triggered by this request.",
          remedy: "calpump retries with back-off. If it persists for one mailbox, look at the server's logs with the request id from the detail." },
    de: { title: "Der Server meldet einen internen Fehler",
          cause: "Der Server hat mit einem 5xx-Status geantwortet: ein vorübergehender Fehler auf seiner Seite oder ein Fehler, den diese Anfrage auslöst.",
          remedy: "calpump wiederholt mit wachsender Wartezeit. Hält es für ein Postfach an, prüfen Sie die Server-Logs anhand der Request-ID aus dem Detail." });

entry!(THROTTLED, "http.Throttled", retryable: true,
    en: { title: "The server throttles requests",
          cause: "The service limits how many requests an app or account may make; calpump reached that limit and waits as the server asks.",
          remedy: "Nothing to do when it is occasional. If syncs fall behind, lengthen the routes' `interval` or lower `max_concurrency` in the profile." },
    de: { title: "Der Server drosselt Anfragen",
          cause: "Der Dienst begrenzt, wie viele Anfragen eine App oder ein Konto stellen darf; calpump hat die Grenze erreicht und wartet so lange, wie der Server verlangt.",
          remedy: "Gelegentlich ist das normal. Fallen Synchronisierungen zurück, das `interval` der Routen verlängern oder `max_concurrency` im Profil senken." });

entry!(MALFORMED, "proto.Malformed", retryable: true,
    en: { title: "Unreadable answer from the server",
          cause: "The answer was cut off or is not valid XML/JSON of the expected shape: a connection dropped mid-answer, a proxy altered it, or the server sent something calpump does not know.",
          remedy: "Usually passing; calpump retries and loses nothing. If it repeats, run with RUST_LOG=debug to see the element that failed and report it with the server's version." },
    de: { title: "Unlesbare Antwort vom Server",
          cause: "Die Antwort war abgeschnitten oder kein gültiges XML/JSON der erwarteten Form: Die Verbindung brach ab, ein Proxy hat sie verändert, oder der Server sendet etwas, das calpump nicht kennt.",
          remedy: "Meist vorübergehend; calpump versucht es erneut und verliert nichts. Wiederholt es sich, mit RUST_LOG=debug starten, um das fehlerhafte Element zu sehen, und mit der Serverversion melden." });

entry!(INSECURE_URL, "config.InsecureUrl", retryable: false,
    en: { title: "Plain http:// to a non-loopback host",
          cause: "The profile names an http:// URL for a host other than this machine: credentials and calendar data would cross the network unencrypted.",
          remedy: "Use https://. Only if the network path is protected otherwise, set `allow_insecure = true` in the profile." },
    de: { title: "Unverschlüsseltes http:// zu einem entfernten Host",
          cause: "Das Profil nennt eine http://-URL zu einem anderen Rechner: Zugangsdaten und Kalenderdaten liefen unverschlüsselt durchs Netz.",
          remedy: "Verwenden Sie https://. Nur wenn der Netzweg anderweitig geschützt ist, `allow_insecure = true` im Profil setzen." });

entry!(SECRET_MISSING, "secret.Missing", retryable: false,
    en: { title: "A secret cannot be read",
          cause: "The secret reference points at an environment variable that is not set, a file that cannot be read, or an encrypted value the key file cannot decrypt.",
          remedy: "Set the environment variable for the calpump process (for a service: in its unit's Environment= or EnvironmentFile=), fix the file path and permissions, or re-encrypt the value with `calpump secret encrypt`." },
    de: { title: "Ein Geheimnis kann nicht gelesen werden",
          cause: "Der Verweis zeigt auf eine nicht gesetzte Umgebungsvariable, eine nicht lesbare Datei oder einen verschlüsselten Wert, den die Schlüsseldatei nicht entschlüsseln kann.",
          remedy: "Setzen Sie die Umgebungsvariable für den calpump-Prozess (als Dienst: Environment= oder EnvironmentFile= der Unit), korrigieren Sie Dateipfad und Rechte oder verschlüsseln Sie den Wert mit `calpump secret encrypt` neu." });

entry!(SECRET_EXPIRES_SOON, "secret.ExpiresSoon", retryable: false,
    en: { title: "A client secret or certificate expires soon",
          cause: "The profile's `secret_expires` date or the certificate's notAfter is less than 30 days away; after it, every sign-in fails and door signs go stale.",
          remedy: "Create a new secret or certificate for the app registration now (Certificates & secrets), store it, update `secret_expires`, and run `calpump profile test`. Remove the old one after the switch." },
    de: { title: "Ein Client-Geheimnis oder Zertifikat läuft bald ab",
          cause: "Das Datum `secret_expires` des Profils oder das notAfter des Zertifikats liegt weniger als 30 Tage entfernt; danach schlägt jede Anmeldung fehl und die Türschilder veralten.",
          remedy: "Legen Sie jetzt ein neues Geheimnis oder Zertifikat für die App-Registrierung an (Zertifikate & Geheimnisse), hinterlegen Sie es, aktualisieren Sie `secret_expires` und führen Sie `calpump profile test` aus. Das alte danach entfernen." });

entry!(SECRET_EXPIRED, "secret.Expired", retryable: false,
    en: { title: "The client secret or certificate has expired",
          cause: "The profile's `secret_expires` date or the certificate's notAfter is in the past.",
          remedy: "Create a new secret or certificate for the app registration (Certificates & secrets), store it, update `secret_expires`, and run `calpump profile test`." },
    de: { title: "Das Client-Geheimnis oder Zertifikat ist abgelaufen",
          cause: "Das Datum `secret_expires` des Profils oder das notAfter des Zertifikats liegt in der Vergangenheit.",
          remedy: "Legen Sie ein neues Geheimnis oder Zertifikat für die App-Registrierung an (Zertifikate & Geheimnisse), hinterlegen Sie es, aktualisieren Sie `secret_expires` und führen Sie `calpump profile test` aus." });

entry!(CERTIFICATE_UNUSABLE, "secret.CertificateUnusable", retryable: false,
    en: { title: "The client certificate or its private key cannot be used",
          cause: "The certificate file is not a PEM X.509 certificate, the private key is not a PEM RSA key (Entra ID certificate credentials need RSA), or the key does not belong to the certificate — after a renewal, often only one of the two files was replaced.",
          remedy: "Point `certificate` at the PEM certificate uploaded to the app registration and `private_key` at its key (PKCS#8 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY'; a .pfx converts with `openssl pkcs12 -in app.pfx -nodes`). Compare the thumbprint in the detail with the one under App registrations > (the app) > Certificates & secrets." },
    de: { title: "Das Client-Zertifikat oder sein privater Schlüssel ist nicht verwendbar",
          cause: "Die Zertifikatsdatei ist kein PEM-X.509-Zertifikat, der private Schlüssel ist kein PEM-RSA-Schlüssel (Zertifikat-Anmeldeinformationen von Entra ID brauchen RSA), oder der Schlüssel gehört nicht zum Zertifikat — nach einer Erneuerung wurde oft nur eine der beiden Dateien ersetzt.",
          remedy: "`certificate` auf das in der App-Registrierung hochgeladene PEM-Zertifikat und `private_key` auf dessen Schlüssel zeigen lassen (PKCS#8 'BEGIN PRIVATE KEY' oder 'BEGIN RSA PRIVATE KEY'; eine .pfx-Datei wandelt `openssl pkcs12 -in app.pfx -nodes` um). Den Fingerabdruck aus dem Detail mit dem unter App-Registrierungen > (App) > Zertifikate & Geheimnisse vergleichen." });

entry!(EMPTY_CALENDAR_GUARD, "sync.EmptyCalendarGuard", retryable: false,
    en: { title: "A calendar suddenly reads empty; nothing was deleted",
          cause: "The calendar held events at the last sync and now reads as empty. That is more often a permission or mailbox problem than a real change, so calpump did not remove the events from the sinks.",
          remedy: "Check the mailbox in Outlook or with `calpump mailboxes <profile>`. If it really is empty now, run `calpump sync --route <route> --accept-empty` once." },
    de: { title: "Ein Kalender ist plötzlich leer; nichts wurde gelöscht",
          cause: "Der Kalender hatte beim letzten Lauf Termine und liest sich jetzt leer. Das ist häufiger ein Berechtigungs- oder Postfachproblem als eine echte Änderung, daher hat calpump die Termine in den Zielen nicht entfernt.",
          remedy: "Prüfen Sie das Postfach in Outlook oder mit `calpump mailboxes <profil>`. Ist es wirklich leer, einmal `calpump sync --route <route> --accept-empty` ausführen." });

entry!(CURSOR_RESET, "sync.CursorReset", retryable: true,
    en: { title: "The change cursor was no longer valid; the calendar was read in full",
          cause: "The server no longer accepts the stored sync state (after a long pause, a mailbox move, or a server-side reset).",
          remedy: "Nothing to do: calpump re-read the whole window and lost nothing. Frequent resets for one mailbox point to mailbox moves or a server problem." },
    de: { title: "Der Änderungszeiger war ungültig; der Kalender wurde vollständig gelesen",
          cause: "Der Server akzeptiert den gespeicherten Synchronisierungsstand nicht mehr (nach langer Pause, Postfachverschiebung oder serverseitigem Zurücksetzen).",
          remedy: "Nichts zu tun: calpump hat das ganze Zeitfenster neu gelesen und nichts verloren. Häufiges Zurücksetzen bei einem Postfach deutet auf Verschiebungen oder ein Serverproblem." });

entry!(SINK_FAILED, "sink.Failed", retryable: true,
    en: { title: "A sink could not write",
          cause: "A sink of the route failed to take a batch or to flush it (its database, directory or broker is unreachable or refuses the write). The cursor stays where it was, so nothing is lost.",
          remedy: "Read the sink's error in the detail, fix the target (credentials, disk space, connectivity); the next sync re-delivers everything since the last success." },
    de: { title: "Ein Ziel konnte nicht schreiben",
          cause: "Ein Ziel der Route konnte einen Stapel nicht übernehmen oder nicht sichern (Datenbank, Verzeichnis oder Broker nicht erreichbar oder verweigert das Schreiben). Der Zeiger bleibt stehen, es geht nichts verloren.",
          remedy: "Lesen Sie den Fehler des Ziels im Detail und beheben Sie die Ursache (Zugangsdaten, Speicherplatz, Erreichbarkeit); der nächste Lauf liefert alles seit dem letzten Erfolg erneut." });

entry!(SINK_REJECTED, "sink.Rejected", retryable: false,
    en: { title: "A sink rejected an event",
          cause: "The sink cannot store this event as it is (a value too long or not allowed by the target). The other events of the batch were written.",
          remedy: "See the reason in the detail; widen the target column or ask the organizer to change the meeting. The event is retried when it changes." },
    de: { title: "Ein Ziel hat einen Termin abgelehnt",
          cause: "Das Ziel kann diesen Termin so nicht speichern (ein Wert zu lang oder im Ziel nicht erlaubt). Die übrigen Termine des Stapels wurden geschrieben.",
          remedy: "Den Grund im Detail lesen; die Zielspalte erweitern oder den Organisator bitten, den Termin zu ändern. Bei der nächsten Änderung wird er erneut versucht." });

entry!(PLUGIN_REFUSED, "plugin.Refused", retryable: false,
    en: { title: "A plugin was refused",
          cause: "A sink plugin file could not be used: it is not a calpump plugin, it was built for another plugin ABI version, or it crashed while loading.",
          remedy: "Rebuild the plugin against this calpump's `calpump-plugin` crate (see `calpump plugins` for the ABI version), or remove it from the plugin directory." },
    de: { title: "Ein Plugin wurde abgelehnt",
          cause: "Eine Plugin-Datei ist nicht verwendbar: Sie ist kein calpump-Plugin, wurde für eine andere Plugin-ABI-Version gebaut oder ist beim Laden abgestürzt.",
          remedy: "Bauen Sie das Plugin gegen das `calpump-plugin`-Crate dieser calpump-Version neu (ABI-Version zeigt `calpump plugins`) oder entfernen Sie es aus dem Plugin-Verzeichnis." });

entry!(INTERNAL, "general.Internal", retryable: true,
    en: { title: "Unexpected internal error",
          cause: "calpump met a situation it does not expect; the detail says where.",
          remedy: "Retry; if it repeats, run with RUST_LOG=debug and report the detail and the log lines around it." },
    de: { title: "Unerwarteter interner Fehler",
          cause: "calpump ist auf eine Lage gestoßen, die es nicht erwartet; das Detail nennt die Stelle.",
          remedy: "Erneut versuchen; wiederholt es sich, mit RUST_LOG=debug starten und Detail samt umgebender Logzeilen melden." });

entry!(ROOM_LIST_NOT_FOUND, "sync.RoomListNotFound", retryable: false,
    en: { title: "A room list of the route was not found",
          cause: "The route names a room list (by address or display name) that the profile's server does not return: a typo, a list that was renamed or removed, or an account that may not read the directory.",
          remedy: "Compare the route's `room_lists` with the lists `calpump mailboxes <profile>` shows, and correct the name or address." },
    de: { title: "Eine Raumliste der Route wurde nicht gefunden",
          cause: "Die Route nennt eine Raumliste (per Adresse oder Anzeigename), die der Server des Profils nicht liefert: ein Tippfehler, eine umbenannte oder gelöschte Liste oder ein Konto ohne Leserecht im Verzeichnis.",
          remedy: "Vergleichen Sie `room_lists` der Route mit den Listen, die `calpump mailboxes <profil>` zeigt, und korrigieren Sie Name oder Adresse." });

entry!(CALENDAR_NOT_FOUND, "sync.CalendarNotFound", retryable: false,
    en: { title: "A calendar of the route was not found in a mailbox",
          cause: "The route's `calendars` names a calendar path that this mailbox does not have: a typo, a renamed folder, or a folder the account may not see.",
          remedy: "Run `calpump mailboxes <profile>` to see the mailbox's calendar paths and correct the route's `calendars`, or use \"all\"." },
    de: { title: "Ein Kalender der Route fehlt in einem Postfach",
          cause: "`calendars` der Route nennt einen Kalenderpfad, den dieses Postfach nicht hat: ein Tippfehler, ein umbenannter Ordner oder ein Ordner, den das Konto nicht sehen darf.",
          remedy: "Mit `calpump mailboxes <profil>` die Kalenderpfade des Postfachs anzeigen und `calendars` der Route korrigieren oder \"all\" verwenden." });

entry!(STATE_FAILED, "general.StateStore", retryable: true,
    en: { title: "The state store could not be read or written",
          cause: "calpump keeps cursors and run history in its state database; it could not be opened, read or written (disk full, file permissions, a locked or damaged file).",
          remedy: "Check the `[state] path` file: free disk space, permissions for the calpump user, and that no other program holds it open. The sync did not advance, so nothing is lost." },
    de: { title: "Der Zustandsspeicher konnte nicht gelesen oder geschrieben werden",
          cause: "calpump hält Zeiger und Laufhistorie in seiner Zustandsdatenbank; sie ließ sich nicht öffnen, lesen oder schreiben (Platte voll, Dateirechte, gesperrte oder beschädigte Datei).",
          remedy: "Prüfen Sie die Datei aus `[state] path`: freier Plattenplatz, Rechte des calpump-Benutzers, und dass kein anderes Programm sie offen hält. Die Synchronisierung ist nicht fortgeschritten, es geht nichts verloren." });

entry!(CONFIG_INVALID, "config.Invalid", retryable: false,
    en: { title: "The profile's configuration is not valid",
          cause: "The profile has keys that are missing, unknown or of the wrong type (the detail lists each with its line), so calpump cannot build the connection.",
          remedy: "Correct the keys the detail names; `calpump check` lists every problem of the file with file:line:col. Then run `calpump profile test` again." },
    de: { title: "Die Konfiguration des Profils ist ungültig",
          cause: "Dem Profil fehlen Schlüssel, es hat unbekannte Schlüssel oder Werte vom falschen Typ (das Detail nennt jeden mit seiner Zeile), daher kann calpump die Verbindung nicht aufbauen.",
          remedy: "Die im Detail genannten Schlüssel korrigieren; `calpump check` listet jedes Problem der Datei mit Datei:Zeile:Spalte. Dann `calpump profile test` erneut ausführen." });

pub static ALL: &[&crate::diagnostics::DiagnosticInfo] = &[
    &DNS,
    &CONNECT,
    &TLS,
    &TIMEOUT,
    &HTML_INSTEAD_OF_API,
    &SERVER_ERROR,
    &THROTTLED,
    &MALFORMED,
    &INSECURE_URL,
    &SECRET_MISSING,
    &SECRET_EXPIRES_SOON,
    &SECRET_EXPIRED,
    &CERTIFICATE_UNUSABLE,
    &EMPTY_CALENDAR_GUARD,
    &CURSOR_RESET,
    &SINK_FAILED,
    &SINK_REJECTED,
    &PLUGIN_REFUSED,
    &ROOM_LIST_NOT_FOUND,
    &CALENDAR_NOT_FOUND,
    &STATE_FAILED,
    &INTERNAL,
    &CONFIG_INVALID,
];
