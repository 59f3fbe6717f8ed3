//! The fixed catalogue of the simulated tenant's apps and accounts. Each entry demonstrates one
//! state an administrator meets; `simulator/README.md` lists them in a table. Control-API
//! switches (`Control::set_app`, `Control::set_account`, …) change them at run time.

/// Tenant (directory) id.
pub const TENANT_ID: &str = "8f2c1a9e-4b7d-4c3a-9e51-6d0b2a7f4c11";
/// The tenant's initial domain; the token endpoint also accepts [`MAIL_DOMAIN`] and [`TENANT_ID`].
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// The SMTP domain of every mailbox.
pub const MAIL_DOMAIN: &str = "contoso.com";
/// NetBIOS domain for Basic/NTLM (`CONTOSO\svc-pump`).
pub const NETBIOS_DOMAIN: &str = "CONTOSO";

/// Graph's resource app id (the `aud` of Graph tokens may be this or the URL).
pub const GRAPH_RESOURCE_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Exchange Online's resource app id.
pub const EXCHANGE_RESOURCE_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
pub const EXCHANGE_AUDIENCE: &str = "https://outlook.office365.com";

/// A good Graph app: secret and certificate, roles `Calendars.Read` and `Place.Read.All` — what
/// calpump asks for, nothing more (no `User.Read.All`: `users`, `translateExchangeIds` answer 403).
pub const GRAPH_APP_ID: &str = "0a1b2c3d-1111-4a5b-8c6d-000000000001";
pub const GRAPH_APP_SECRET: &str = "sIm8Q~GraphAppSecretValue.0001-calpump";
/// The secret's *ID* (pasting this instead of the value gives AADSTS7000215).
pub const GRAPH_APP_SECRET_ID: &str = "5ec7e7a0-0000-4000-8000-000000000001";
/// The certificate registered for [`GRAPH_APP_ID`] (PEM), and its private key (PKCS#8 PEM).
pub const GRAPH_APP_CERT_PEM: &str = include_str!("../fixtures/graph-app-cert.pem");
pub const GRAPH_APP_KEY_PEM: &str = include_str!("../fixtures/graph-app-key.pem");
/// A key that is *not* registered anywhere (assertions signed with it fail with AADSTS700027).
pub const UNREGISTERED_KEY_PEM: &str = include_str!("../fixtures/other-key.pem");

/// A good EWS app: role `full_access_as_app` on Office 365 Exchange Online.
pub const EWS_APP_ID: &str = "0a1b2c3d-2222-4a5b-8c6d-000000000002";
pub const EWS_APP_SECRET: &str = "sIm8Q~EwsAppSecretValue.0002-calpump";

/// Registered, but admin consent was never granted: client credentials still get a token, but
/// without `roles`; Graph answers 401 `InvalidAuthenticationToken` "Either scp or roles claim need
/// to be present in the token.", EWS 401 (`x-ms-diagnostics` 2000008). (Delegated grants of an
/// app without consent get AADSTS65001.)
pub const NO_CONSENT_APP_ID: &str = "0a1b2c3d-3333-4a5b-8c6d-000000000003";
pub const NO_CONSENT_APP_SECRET: &str = "sIm8Q~NoConsentSecretValue.0003-calpump";

/// Its only secret expired: AADSTS7000222.
pub const EXPIRED_SECRET_APP_ID: &str = "0a1b2c3d-4444-4a5b-8c6d-000000000004";
pub const EXPIRED_SECRET_APP_SECRET: &str = "sIm8Q~ExpiredSecretValue.0004-calpump";

/// Consented, but the granted roles lack `Calendars.Read` and `Place.Read.All` (only
/// `User.Read.All`): calendars and places answer 403 `ErrorAccessDenied` "Access is denied. Check
/// credentials and try again."
pub const NO_ROLES_APP_ID: &str = "0a1b2c3d-5555-4a5b-8c6d-000000000005";
pub const NO_ROLES_APP_SECRET: &str = "sIm8Q~NoRolesSecretValue.0005-calpump";

/// Graph roles granted, but an application access policy (RBAC for Applications) scopes it to the
/// rooms of the first room list ("Building 1"); any other mailbox answers 403 ErrorAccessDenied
/// "Access to OData is disabled: …".
pub const SCOPED_APP_ID: &str = "0a1b2c3d-6666-4a5b-8c6d-000000000006";
pub const SCOPED_APP_SECRET: &str = "sIm8Q~ScopedAppSecretValue.0006-calpump";

/// A public client for the password grant (ROPC) and refresh tokens; delegated scopes
/// `Calendars.Read`, `Place.Read.All`, `User.Read` (Graph) and `EWS.AccessAsUser.All` (EWS).
/// User assignment is required: [`UNASSIGNED_USER`] is not assigned (AADSTS50105).
pub const DELEGATED_APP_ID: &str = "0a1b2c3d-7777-4a5b-8c6d-000000000007";

/// The password of every catalogue account (change it per account with the control API).
pub const ACCOUNT_PASSWORD: &str = "Sim-Passw0rd!";

/// Service account with the ApplicationImpersonation role (EWS impersonation allowed).
pub const SVC_PUMP: &str = "svc-pump@contoso.com";
/// Service account without ApplicationImpersonation (EWS `ErrorImpersonateUserDenied`).
pub const SVC_NOIMP: &str = "svc-noimp@contoso.com";
/// MFA enforced: the password grant fails with AADSTS50076.
pub const MFA_USER: &str = "mfa-user@contoso.com";
/// Not assigned to [`DELEGATED_APP_ID`]: AADSTS50105.
pub const UNASSIGNED_USER: &str = "unassigned@contoso.com";
/// Blocked by a conditional access policy: AADSTS53003.
pub const CA_BLOCKED_USER: &str = "ca-blocked@contoso.com";
/// A room whose mailbox is still on-premises: Graph `MailboxNotEnabledForRESTAPI`.
pub const ONPREM_ROOM: &str = "room-onprem@contoso.com";

/// The catalogue accounts in directory order (they are the first mailboxes).
pub(crate) const ACCOUNTS: &[(&str, &str)] = &[
    (SVC_PUMP, "Calendar Pump Service"),
    (SVC_NOIMP, "Service Without Impersonation"),
    (MFA_USER, "Mfa User"),
    (UNASSIGNED_USER, "Unassigned User"),
    (CA_BLOCKED_USER, "Conditional Access Blocked"),
];

/// What an app is set up to be (the initial state of the catalogue).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AppState {
    pub client_id: String,
    pub display_name: String,
    /// Secret value; `None` for a public client.
    pub secret: Option<String>,
    pub secret_id: Option<String>,
    /// Seconds since the Unix epoch when the secret expires (`None` = never).
    pub secret_expires: Option<i64>,
    /// Whether the registered certificate may sign client assertions for this app.
    pub certificate: bool,
    pub consented: bool,
    /// Application roles on Graph (e.g. `Calendars.Read`, `Place.Read.All`, `User.Read.All`).
    pub graph_roles: Vec<String>,
    /// Application roles on Exchange Online (`full_access_as_app`).
    pub ews_roles: Vec<String>,
    /// Delegated scopes the app may obtain (public client).
    pub delegated_scopes: Vec<String>,
    /// When set, an application access policy limits the app to these mailboxes (lower-case SMTP).
    pub scoped_to: Option<Vec<String>>,
    pub public_client: bool,
    pub assignment_required: bool,
}

/// A catalogue account's switches.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AccountState {
    pub upn: String,
    pub password: String,
    /// EWS ApplicationImpersonation role.
    pub impersonation: bool,
    pub mfa_required: bool,
    pub blocked_by_conditional_access: bool,
    /// Assigned to [`DELEGATED_APP_ID`].
    pub assigned: bool,
}

pub(crate) fn initial_apps(anchor_secs: i64, building1_rooms: Vec<String>) -> Vec<AppState> {
    let s = |v: &str| Some(v.to_string());
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let year = 365 * 86_400;
    let app = |id: &str, name: &str, secret: &str| AppState {
        client_id: id.into(),
        display_name: name.into(),
        secret: s(secret),
        secret_id: Some(format!("5ec7e7a0-0000-4000-8000-{}", &id[24..])),
        secret_expires: Some(anchor_secs + 2 * year),
        certificate: false,
        consented: true,
        graph_roles: vec![],
        ews_roles: vec![],
        delegated_scopes: vec![],
        scoped_to: None,
        public_client: false,
        assignment_required: false,
    };
    // What calpump's Graph backend asks for (DESIGN.md): Calendars.Read + Place.Read.All.
    let graph_roles = v(&["Calendars.Read", "Place.Read.All"]);
    vec![
        AppState {
            certificate: true,
            graph_roles: graph_roles.clone(),
            ..app(GRAPH_APP_ID, "calpump Graph (good)", GRAPH_APP_SECRET)
        },
        AppState {
            ews_roles: v(&["full_access_as_app"]),
            ..app(EWS_APP_ID, "calpump EWS (good)", EWS_APP_SECRET)
        },
        AppState {
            consented: false,
            graph_roles: graph_roles.clone(),
            ews_roles: v(&["full_access_as_app"]),
            ..app(
                NO_CONSENT_APP_ID,
                "calpump (consent missing)",
                NO_CONSENT_APP_SECRET,
            )
        },
        AppState {
            secret_expires: Some(anchor_secs - 30 * 86_400),
            graph_roles: graph_roles.clone(),
            ..app(
                EXPIRED_SECRET_APP_ID,
                "calpump (secret expired)",
                EXPIRED_SECRET_APP_SECRET,
            )
        },
        AppState {
            graph_roles: v(&["User.Read.All"]),
            ..app(
                NO_ROLES_APP_ID,
                "calpump (roles missing)",
                NO_ROLES_APP_SECRET,
            )
        },
        AppState {
            graph_roles,
            scoped_to: Some(building1_rooms),
            ..app(
                SCOPED_APP_ID,
                "calpump (scoped by application access policy)",
                SCOPED_APP_SECRET,
            )
        },
        AppState {
            client_id: DELEGATED_APP_ID.into(),
            display_name: "calpump delegated (public client)".into(),
            secret: None,
            secret_id: None,
            secret_expires: None,
            certificate: false,
            consented: true,
            graph_roles: vec![],
            ews_roles: vec![],
            delegated_scopes: v(&[
                "Calendars.Read",
                "Place.Read.All",
                "User.Read",
                "EWS.AccessAsUser.All",
            ]),
            scoped_to: None,
            public_client: true,
            assignment_required: true,
        },
    ]
}

pub(crate) fn initial_accounts() -> Vec<AccountState> {
    ACCOUNTS
        .iter()
        .map(|(upn, _)| AccountState {
            upn: upn.to_string(),
            password: ACCOUNT_PASSWORD.into(),
            impersonation: *upn == SVC_PUMP,
            mfa_required: *upn == MFA_USER,
            blocked_by_conditional_access: *upn == CA_BLOCKED_USER,
            assigned: *upn != UNASSIGNED_USER,
        })
        .collect()
}
