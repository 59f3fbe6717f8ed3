//! The tenant model, shared by every protocol (Graph here, EWS in `crate::ews`).
//!
//! Start at [`Tenant`]: `directory` (users, rooms, equipment, room lists), `read`/`write` of a
//! mailbox's [`MailboxState`] (calendars, items, change log), instance expansion
//! ([`MailboxState::instances`]), ids ([`ids`]), global object ids ([`goid`]).

pub mod directory;
mod generate;
pub mod goid;
pub mod ids;
pub mod model;
pub mod rng;
pub mod store;
pub mod zones;

pub use directory::{Directory, Mailbox, MailboxKind, RoomList};
pub use goid::GlobalObjectId;
pub use ids::IdFormat;
pub use model::{EventData, Instance, InstanceKind, Item};
pub use store::{
    ALL_CALENDARS, AllDayDates, Calendar, Change, ChangeKind, EventChange, EventRef, ItemChange,
    MailboxState, MutationError, NewEvent, RecurrenceSpec, SyncPointError, Tenant, TenantConfig,
    TruthInstance,
};
