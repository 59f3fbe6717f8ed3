//! The directory: users, room and equipment mailboxes, room lists. Generated eagerly at start
//! (a few hundred bytes per mailbox); calendars are generated lazily (see `store`).

use super::rng::{Guid, Rng};
use super::zones::{self, Zone};
use crate::catalogue;
use std::collections::HashMap;

/// Rooms per room list ("Building N").
pub const ROOMS_PER_LIST: u32 = 50;
/// Rooms per floor.
pub const ROOMS_PER_FLOOR: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    User,
    Room,
    Equipment,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Mailbox {
    /// Position in the directory; the key every tenant call takes.
    pub index: u32,
    pub kind: MailboxKind,
    /// Entra object id (Graph `id` of the user).
    pub object_id: Guid,
    /// Exchange mailbox GUID (encoded in item ids).
    pub exchange_guid: Guid,
    /// Lower-case SMTP address = UPN.
    pub smtp: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// The mailbox's time zone (its working hours; the zone of most meetings in it).
    #[serde(serialize_with = "ser_zone")]
    pub zone: &'static Zone,
    pub capacity: Option<u32>,
    pub building: Option<String>,
    pub floor: Option<i32>,
    /// The room list this room belongs to.
    pub room_list: Option<u32>,
    /// Initially hosted on-premises (Graph `MailboxNotEnabledForRESTAPI`); a control switch can change it.
    pub on_prem: bool,
}

fn ser_zone<S: serde::Serializer>(z: &&'static Zone, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(z.windows)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomList {
    pub index: u32,
    pub object_id: Guid,
    pub smtp: String,
    pub display_name: String,
    pub rooms: Vec<u32>,
}

#[derive(Debug)]
pub struct Directory {
    pub mailboxes: Vec<Mailbox>,
    pub room_lists: Vec<RoomList>,
    by_smtp: HashMap<String, u32>,
    by_object_id: HashMap<Guid, u32>,
    by_exchange_guid: HashMap<Guid, u32>,
    /// Generated (non-catalogue) users, for picking organizers and attendees.
    pub people: Vec<u32>,
}

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Zoë",
    "José",
    "Jürgen",
    "Øyvind",
    "Łukasz",
    "Megan",
    "Nestor",
    "Patti",
    "Lidia",
    "Isaiah",
    "Grady",
    "Miriam",
    "Henrietta",
    "Johanna",
    "Diego",
    "Lynne",
    "Christie",
    "Pradeep",
    "美咲",
    "Ольга",
    "François",
    "Siobhán",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Müller",
    "García",
    "Støre",
    "Nowak",
    "Bowen",
    "Wilson",
    "Langer",
    "Johnson",
    "Archie",
    "Cline",
    "Holt",
    "Mueller",
    "Gonzalez",
    "Sherman",
    "Cameron",
    "Patel",
    "佐藤",
    "Иванова",
    "Dubois",
    "O'Brien",
];

/// ASCII local part from a display name ("Zoë Müller" → "zoe.muller").
fn ascii_local(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let m = match c {
            'ä' | 'à' | 'á' | 'â' | 'å' => "a",
            'ë' | 'é' | 'è' | 'ê' => "e",
            'ï' | 'í' | 'ì' => "i",
            'ö' | 'ó' | 'ò' | 'ô' | 'ø' | 'Ø' => "o",
            'ü' | 'ú' | 'ù' => "u",
            'ç' => "c",
            'ł' | 'Ł' => "l",
            'ñ' => "n",
            ' ' => ".",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(m);
    }
    let t = out.trim_matches('.').to_string();
    if t.is_empty() || t.starts_with('.') {
        "user".into()
    } else {
        t
    }
}

const BUILDING_ZONES: &[&str] = &[
    "W. Europe Standard Time",
    "Eastern Standard Time",
    "GMT Standard Time",
    "Tokyo Standard Time",
    "Pacific Standard Time",
];

impl Directory {
    pub fn generate(seed: u64, users: u32, rooms: u32, equipment: u32) -> Directory {
        let mut mailboxes = Vec::with_capacity((users + rooms + equipment) as usize + 8);
        let mut push =
            |kind: MailboxKind, smtp: String, display: String, extra: &dyn Fn(&mut Mailbox)| {
                let index = mailboxes.len() as u32;
                let mut rng = Rng::derive(seed, &[0xD1, u64::from(index)]);
                let mut m = Mailbox {
                    index,
                    kind,
                    object_id: Guid::from_rng(&mut rng),
                    exchange_guid: Guid::from_rng(&mut rng),
                    smtp,
                    display_name: display,
                    given_name: None,
                    surname: None,
                    zone: zones::find(BUILDING_ZONES[0]).unwrap_or(zones::utc()),
                    capacity: None,
                    building: None,
                    floor: None,
                    room_list: None,
                    on_prem: false,
                };
                extra(&mut m);
                mailboxes.push(m);
            };
        for (upn, name) in catalogue::ACCOUNTS {
            push(MailboxKind::User, upn.to_string(), name.to_string(), &|m| {
                let mut parts = m.display_name.splitn(2, ' ');
                m.given_name = parts.next().map(str::to_string);
                m.surname = parts.next().map(str::to_string);
            });
        }
        let mut people = Vec::new();
        let mut rng = Rng::derive(seed, &[0xD2]);
        for i in 0..users {
            let first = *rng.pick(FIRST);
            let last = *rng.pick(LAST);
            let display = format!("{first} {last}");
            let smtp = format!(
                "{}.{}@{}",
                ascii_local(&display),
                i + 1,
                catalogue::MAIL_DOMAIN
            );
            let zone_name = *rng.pick(BUILDING_ZONES);
            people.push(catalogue::ACCOUNTS.len() as u32 + i);
            push(MailboxKind::User, smtp, display, &|m| {
                m.given_name = Some(first.to_string());
                m.surname = Some(last.to_string());
                m.zone = zones::find(zone_name).unwrap_or(zones::utc());
            });
        }
        let lists = rooms.div_ceil(ROOMS_PER_LIST);
        let mut room_lists: Vec<RoomList> = (0..lists)
            .map(|l| {
                let mut r = Rng::derive(seed, &[0xD3, u64::from(l)]);
                RoomList {
                    index: l,
                    object_id: Guid::from_rng(&mut r),
                    smtp: format!("building-{}@{}", l + 1, catalogue::MAIL_DOMAIN),
                    display_name: format!("Building {}", l + 1),
                    rooms: Vec::new(),
                }
            })
            .collect();
        for i in 0..rooms {
            let list = i / ROOMS_PER_LIST;
            let n = i % ROOMS_PER_LIST + 1;
            let floor = ((n - 1) / ROOMS_PER_FLOOR) as i32 + 1;
            let zone = zones::find(BUILDING_ZONES[(list as usize) % BUILDING_ZONES.len()])
                .unwrap_or(zones::utc());
            let capacity = [4, 6, 8, 10, 12, 16, 20, 50]
                [(Rng::derive(seed, &[0xD4, u64::from(i)]).below(8)) as usize];
            let idx = (catalogue::ACCOUNTS.len() as u32) + users + i;
            room_lists[list as usize].rooms.push(idx);
            push(
                MailboxKind::Room,
                format!("room-{}.{:02}@{}", list + 1, n, catalogue::MAIL_DOMAIN),
                format!("Room {}.{:02}", list + 1, n),
                &|m| {
                    m.zone = zone;
                    m.capacity = Some(capacity);
                    m.building = Some(format!("Building {}", list + 1));
                    m.floor = Some(floor);
                    m.room_list = Some(list);
                },
            );
        }
        push(
            MailboxKind::Room,
            catalogue::ONPREM_ROOM.to_string(),
            "Room On-Premises".into(),
            &|m| {
                m.on_prem = true;
                m.capacity = Some(8);
                m.building = Some("Old Building".into());
                m.floor = Some(0);
            },
        );
        for i in 0..equipment {
            let display = match i % 3 {
                0 => format!("Projector {}", i + 1),
                1 => format!("Pool Car {}", i + 1),
                _ => format!("Camera Kit {}", i + 1),
            };
            push(
                MailboxKind::Equipment,
                format!("equipment-{}@{}", i + 1, catalogue::MAIL_DOMAIN),
                display,
                &|_| {},
            );
        }
        let by_smtp = mailboxes
            .iter()
            .map(|m| (m.smtp.clone(), m.index))
            .collect();
        let by_object_id = mailboxes.iter().map(|m| (m.object_id, m.index)).collect();
        let by_exchange_guid = mailboxes
            .iter()
            .map(|m| (m.exchange_guid, m.index))
            .collect();
        Directory {
            mailboxes,
            room_lists,
            by_smtp,
            by_object_id,
            by_exchange_guid,
            people,
        }
    }

    pub fn get(&self, index: u32) -> Option<&Mailbox> {
        self.mailboxes.get(index as usize)
    }

    /// By SMTP/UPN (case-insensitive) or object id.
    pub fn find(&self, key: &str) -> Option<&Mailbox> {
        let k = key.trim();
        if let Some(i) = self.by_smtp.get(&k.to_lowercase()) {
            return self.get(*i);
        }
        Guid::parse(k)
            .and_then(|g| self.by_object_id.get(&g))
            .and_then(|i| self.get(*i))
    }

    pub fn by_exchange_guid(&self, g: Guid) -> Option<&Mailbox> {
        self.by_exchange_guid.get(&g).and_then(|i| self.get(*i))
    }

    pub fn room_list(&self, key: &str) -> Option<&RoomList> {
        let k = key.trim().to_lowercase();
        let g = Guid::parse(&k);
        self.room_lists
            .iter()
            .find(|l| l.smtp == k || Some(l.object_id) == g || l.display_name.to_lowercase() == k)
    }

    pub fn rooms(&self) -> impl Iterator<Item = &Mailbox> {
        self.mailboxes
            .iter()
            .filter(|m| m.kind == MailboxKind::Room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_is_deterministic_and_addressable() {
        let a = Directory::generate(42, 10, 120, 3);
        let b = Directory::generate(42, 10, 120, 3);
        assert_eq!(a.mailboxes.len(), 5 + 10 + 120 + 1 + 3);
        assert_eq!(a.room_lists.len(), 3);
        assert_eq!(a.room_lists[2].rooms.len(), 20);
        let r = a
            .find("ROOM-1.01@contoso.com")
            .map(|m| (m.object_id, m.kind));
        assert_eq!(
            r,
            b.find("room-1.01@contoso.com")
                .map(|m| (m.object_id, m.kind))
        );
        assert_eq!(r.map(|x| x.1), Some(MailboxKind::Room));
        let oid = a.mailboxes[7].object_id.to_string();
        assert_eq!(a.find(&oid).map(|m| m.index), Some(7));
        assert_eq!(a.people.len(), 10);
        assert!(
            a.people
                .iter()
                .all(|i| a.mailboxes[*i as usize].kind == MailboxKind::User)
        );
        assert_eq!(ascii_local("Zoë Müller"), "zoe.muller");
        assert!(
            a.find(crate::catalogue::ONPREM_ROOM)
                .is_some_and(|m| m.on_prem)
        );
        assert_eq!(a.room_list("Building 2").map(|l| l.index), Some(1));
    }
}
