//! The EWS → Graph move (`calpump migrate`, shadow mode). Codes use the `sync` family: they are
//! about a route's reads, like the empty-calendar guard.

entry!(BACKEND_SWITCHED, "sync.BackendSwitched", retryable: false,
    en: { title: "The route was switched to another connection profile",
          cause: "`calpump migrate switch` re-pointed the route's `profile` and gave the new backend a fresh start: its next sync reads every calendar in full, and the sinks change only what differs. This is a record in the route's run history, not a failure.",
          remedy: "Nothing to do. A running `calpump run` keeps the old profile until it is restarted. To undo the switch: `calpump migrate switch --route <route> --back`." },
    de: { title: "Die Route wurde auf ein anderes Verbindungsprofil umgestellt",
          cause: "`calpump migrate switch` hat das `profile` der Route umgestellt und dem neuen Backend einen frischen Start gegeben: Die nächste Synchronisierung liest jeden Kalender vollständig, und die Senken ändern nur, was sich unterscheidet. Das ist ein Eintrag im Verlauf der Route, kein Fehler.",
          remedy: "Nichts zu tun. Ein laufendes `calpump run` behält das alte Profil bis zum Neustart. Rückgängig machen: `calpump migrate switch --route <Route> --back`." });

entry!(SHADOW_DIFFERENCES, "sync.ShadowDifferences", retryable: true,
    en: { title: "The shadow profile reads the route differently",
          cause: "In shadow mode each run also reads the route through its `shadow_profile` and compares event by event with what the route's own profile reads. Events were found only through one profile, or with fields that differ after normalisation — or a mailbox could not be read through one of them. Changes made in Exchange between the two reads show up too; they vanish in the next run.",
          remedy: "Run `calpump migrate verify --route <route> --to <shadow profile>` to see each difference by mailbox and field, and `calpump migrate plan` for permissions and mailboxes still on-premises. Switch the route (`calpump migrate switch`) once the shadow comparison stays at zero." },
    de: { title: "Das Schattenprofil liest die Route anders",
          cause: "Im Schattenbetrieb liest jeder Lauf die Route auch über ihr `shadow_profile` und vergleicht Termin für Termin mit dem, was das eigene Profil der Route liest. Termine wurden nur über eines der Profile gefunden oder haben nach der Normalisierung abweichende Felder — oder ein Postfach ließ sich über eines nicht lesen. Änderungen in Exchange zwischen den beiden Lesevorgängen zeigen sich ebenfalls; sie verschwinden im nächsten Lauf.",
          remedy: "`calpump migrate verify --route <Route> --to <Schattenprofil>` zeigt jede Abweichung nach Postfach und Feld, `calpump migrate plan` fehlende Berechtigungen und noch lokale Postfächer. Die Route umstellen (`calpump migrate switch`), sobald der Schattenvergleich bei null bleibt." });

pub static ALL: &[&crate::diagnostics::DiagnosticInfo] = &[&BACKEND_SWITCHED, &SHADOW_DIFFERENCES];
