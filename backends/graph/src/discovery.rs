//! Room lists, rooms, users and calendars: what `calpump mailboxes` shows and what routes with
//! `room_lists` read.
//!
//! Requests (`api-reference/v1.0/api/place-list.md`, `user-get.md`, `user-list-calendars.md`):
//! - `GET /places/microsoft.graph.roomlist` — room lists;
//! - `GET /places/microsoft.graph.room` — all rooms; `GET /places/{list e-mail}/microsoft.graph.roomlist/rooms`
//!   — the rooms of a list (by its e-mail address, not its id);
//! - `GET /users/{address}` — a configured mailbox. Rooms are looked up in the (cached) room
//!   list first, so a route of 200 configured rooms costs one or two `places` pages, not 200
//!   user lookups; without a directory permission (`User.Read.All`, which calpump does not
//!   need otherwise) `GET /users/{address}/calendar` proves the mailbox and names its owner;
//! - `GET /users/{address}/calendars` — the calendars, then one `$batch` of
//!   `GET …/calendars/{id}/events?$count=true&$top=1&$select=id` for their item counts (events
//!   lists single events and series masters: a series counts once, as EWS `TotalCount` does).

use std::collections::HashMap;
use std::time::Duration;

use calpump_backend_common::calendars;
use calpump_engine::diagnostics::catalogue::graph;
use calpump_engine::source::{CalendarInfo, MailboxInfo, MailboxKind, RoomList, SourceError};
use tokio::time::Instant;

use crate::GraphSource;
use crate::client::{GraphClient, SubRequest};
use crate::model::{Calendar, EmailAddress, Page, Room, RoomListResource, User};

/// How long the room directory is reused by [`GraphSource::resolve_mailbox`].
const ROOM_CACHE_TTL: Duration = Duration::from_secs(600);

/// The cached room directory (or the failure to read it, to not ask again for a while).
#[derive(Debug, Default)]
pub(crate) struct RoomCache {
    pub at: Option<Instant>,
    /// `None` when `places` could not be read (e.g. no `Place.Read.All`).
    pub rooms: Option<HashMap<String, MailboxInfo>>,
}

fn room_info(room: Room, room_list: Option<&str>) -> Option<MailboxInfo> {
    let address = room.email_address?.trim().to_lowercase();
    if address.is_empty() {
        return None;
    }
    Some(MailboxInfo {
        address,
        name: room.display_name.filter(|n| !n.is_empty()),
        kind: MailboxKind::Room,
        room_list: room_list.map(str::to_lowercase),
    })
}

impl GraphSource {
    pub(crate) async fn list_room_lists(&self) -> Result<Vec<RoomList>, SourceError> {
        let url = self.client.absolute(&GraphClient::relative(
            &["places", "microsoft.graph.roomlist"],
            &[("$top", "100")],
        ))?;
        let values = self
            .client
            .get_all("places.roomLists", None, "room lists", &url)
            .await?;
        let mut out = Vec::new();
        for value in values {
            let Ok(list) = serde_json::from_value::<RoomListResource>(value) else {
                continue;
            };
            if let Some(address) = list.email_address.filter(|a| !a.trim().is_empty()) {
                out.push(RoomList {
                    address: address.trim().to_lowercase(),
                    name: list.display_name.filter(|n| !n.is_empty()),
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn list_rooms(
        &self,
        room_list: Option<&str>,
    ) -> Result<Vec<MailboxInfo>, SourceError> {
        let (relative, op, what) = match room_list {
            Some(list) => (
                GraphClient::relative(
                    &["places", list.trim(), "microsoft.graph.roomlist", "rooms"],
                    &[("$top", "100")],
                ),
                "places.roomListRooms",
                format!("rooms of room list {list}"),
            ),
            None => (
                GraphClient::relative(&["places", "microsoft.graph.room"], &[("$top", "100")]),
                "places.rooms",
                "rooms".to_string(),
            ),
        };
        let url = self.client.absolute(&relative)?;
        let values = self.client.get_all(op, None, &what, &url).await?;
        let rooms: Vec<MailboxInfo> = values
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Room>(v).ok())
            .filter_map(|r| room_info(r, room_list))
            .collect();
        if room_list.is_none() {
            let mut cache = self.rooms.lock().await;
            cache.at = Some(Instant::now());
            cache.rooms = Some(
                rooms
                    .iter()
                    .map(|r| (r.address.clone(), r.clone()))
                    .collect(),
            );
        }
        Ok(rooms)
    }

    /// The room directory, from the cache when fresh.
    async fn room_directory(&self) -> Option<HashMap<String, MailboxInfo>> {
        {
            let cache = self.rooms.lock().await;
            if let Some(at) = cache.at
                && at.elapsed() < ROOM_CACHE_TTL
            {
                return cache.rooms.clone();
            }
        }
        match self.list_rooms(None).await {
            Ok(_) => self.rooms.lock().await.rooms.clone(),
            Err(e) => {
                tracing::debug!(
                    code = e.code(),
                    "rooms cannot be listed; looking mailboxes up one by one"
                );
                let mut cache = self.rooms.lock().await;
                cache.at = Some(Instant::now());
                cache.rooms = None;
                None
            }
        }
    }

    pub(crate) async fn lookup_mailbox(&self, address: &str) -> Result<MailboxInfo, SourceError> {
        let address = address.trim().to_lowercase();
        if let Some(rooms) = self.room_directory().await
            && let Some(room) = rooms.get(&address)
        {
            return Ok(room.clone());
        }
        let url = self.client.absolute(&GraphClient::relative(
            &["users", &address],
            &[("$select", "id,displayName,mail,userPrincipalName")],
        ))?;
        let what = format!("user {address}");
        match self
            .client
            .get("user", Some(&address), &what, &url, false)
            .await
        {
            Ok(value) => {
                let user: User = serde_json::from_value(value).unwrap_or_default();
                Ok(MailboxInfo {
                    address: address.clone(),
                    name: user.display_name.filter(|n| !n.is_empty()),
                    kind: MailboxKind::Unknown,
                    room_list: None,
                })
            }
            // Without a directory permission (User.Read.All), the mailbox's calendar proves
            // it exists and can be read.
            Err(e)
                if e.code() == graph::AUTHORIZATION_REQUEST_DENIED.code
                    || e.code() == graph::ACCESS_DENIED.code =>
            {
                let url = self.client.absolute(&GraphClient::relative(
                    &["users", &address, "calendar"],
                    &[("$select", "id,name,owner")],
                ))?;
                let calendar = self
                    .client
                    .get(
                        "calendar",
                        Some(&address),
                        &format!("calendar of {address}"),
                        &url,
                        false,
                    )
                    .await?;
                let owner: Option<EmailAddress> = calendar
                    .get("owner")
                    .and_then(|o| serde_json::from_value(o.clone()).ok());
                Ok(MailboxInfo {
                    address,
                    name: owner.and_then(|o| o.name).filter(|n| !n.is_empty()),
                    kind: MailboxKind::Unknown,
                    room_list: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn list_calendars(
        &self,
        mailbox: &MailboxInfo,
    ) -> Result<Vec<CalendarInfo>, SourceError> {
        let address = mailbox.address.trim().to_lowercase();
        let url = self.client.absolute(&GraphClient::relative(
            &["users", &address, "calendars"],
            &[("$select", "id,name,isDefaultCalendar"), ("$top", "100")],
        ))?;
        let values = self
            .client
            .get_all(
                "calendars",
                Some(&address),
                &format!("calendars of {address}"),
                &url,
            )
            .await?;
        let mut calendars: Vec<Calendar> = values
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Calendar>(v).ok())
            .filter(|c| c.id.is_some())
            .collect();
        // The main calendar first (the service lists it first too, but do not rely on it).
        calendars.sort_by_key(|c| !c.is_default_calendar);
        let any_default = calendars.iter().any(|c| c.is_default_calendar);
        let is_default: Vec<bool> = (0..calendars.len())
            .map(|i| calendars[i].is_default_calendar || (i == 0 && !any_default))
            .collect();
        // Graph lists calendars flat; the path rule shared with EWS (backend-common
        // `calendars`) keeps same-named ones apart by their folder ids, whatever the order.
        let others: Vec<(usize, calendars::Listed<'_>)> = calendars
            .iter()
            .enumerate()
            .filter(|(i, _)| !is_default[*i])
            .map(|(i, c)| {
                (
                    i,
                    calendars::Listed {
                        name: c.name.as_deref(),
                        id: c.id.as_deref().unwrap_or_default(),
                    },
                )
            })
            .collect();
        let listed: Vec<calendars::Listed<'_>> = others.iter().map(|(_, l)| *l).collect();
        let mut paths: HashMap<usize, String> = others
            .iter()
            .map(|(i, _)| *i)
            .zip(calendars::paths(&listed))
            .collect();
        let mut out: Vec<CalendarInfo> = Vec::with_capacity(calendars.len());
        for (i, c) in calendars.iter().enumerate() {
            let name = calendars::display_name(c.name.as_deref()).to_string();
            let path = if is_default[i] {
                calpump_engine::source::DEFAULT_CALENDAR.to_string()
            } else {
                paths.remove(&i).unwrap_or_else(|| name.clone())
            };
            out.push(CalendarInfo {
                id: c.id.clone().unwrap_or_default(),
                path,
                name,
                is_default: is_default[i],
                item_count: None,
            });
        }
        let requests: Vec<SubRequest> = out
            .iter()
            .map(|c| SubRequest {
                op: "events.count",
                mailbox: Some(address.clone()),
                url: GraphClient::relative(
                    &["users", &address, "calendars", &c.id, "events"],
                    &[("$count", "true"), ("$top", "1"), ("$select", "id")],
                ),
                page: true,
                what: format!("item count of calendar {} of {address}", c.path),
            })
            .collect();
        for (calendar, result) in out.iter_mut().zip(self.client.batch(&requests).await) {
            match result.map(Page::from_value) {
                Ok(Ok(page)) => calendar.item_count = page.count,
                Ok(Err(why)) => tracing::debug!(calendar = %calendar.path, %why, "no item count"),
                Err(e) => {
                    tracing::debug!(calendar = %calendar.path, code = e.code(), "no item count")
                }
            }
        }
        Ok(out)
    }
}
