//! Chat rooms: which connections are in which room. Joining and leaving are O(1): a
//! room keeps its members in a vector, each member's seat remembers its index, and a
//! member leaves by swapping the last one into its place. A member is a plain `usize`
//! id (the reactor's slab key), so the sans-IO session can join rooms too.

use std::collections::HashMap;

use slab::Slab;

#[derive(Debug)]
struct Room {
    name: Box<str>,
    /// Distinguishes this room from a later one in the same slot (see [`RoomKey`]).
    serial: u64,
    members: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Seat {
    room: usize,
    index: usize,
}

/// Names a room for as long as it exists: a message waiting to be fanned out keeps it,
/// and finds no room (rather than a newer one in the same slot) once it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomKey {
    index: usize,
    serial: u64,
}

/// Every room of one reactor process (the pub/sub bus joins them across processes).
#[derive(Debug, Default)]
pub struct Rooms {
    /// Rooms created (`true`) and removed since last taken, for the pub/sub bus to
    /// subscribe and unsubscribe; kept only once [`Rooms::watch`] was called.
    changes: Option<Vec<(Box<str>, bool)>>,
    by_name: HashMap<Box<str>, usize>,
    rooms: Slab<Room>,
    /// The serial the next new room gets.
    next_serial: u64,
    seats: HashMap<usize, Seat>,
}

impl Rooms {
    /// Puts member `id` in the room called `name`, creating the room if it is new. A
    /// connection is in at most one room: joining again moves it.
    pub fn join(&mut self, id: usize, name: &str) {
        self.leave(id);
        let room = match self.by_name.get(name) {
            Some(&room) => room,
            None => {
                self.next_serial += 1;
                let room = self.rooms.insert(Room {
                    name: name.into(),
                    serial: self.next_serial,
                    members: Vec::new(),
                });
                self.by_name.insert(name.into(), room);
                if let Some(changes) = &mut self.changes {
                    changes.push((name.into(), true));
                }
                room
            }
        };
        let members = &mut self.rooms[room].members;
        self.seats.insert(
            id,
            Seat {
                room,
                index: members.len(),
            },
        );
        members.push(id);
    }

    /// Takes member `id` out of its room, if it is in one; an emptied room is removed.
    pub fn leave(&mut self, id: usize) {
        let Some(seat) = self.seats.remove(&id) else {
            return;
        };
        let room = &mut self.rooms[seat.room];
        room.members.swap_remove(seat.index);
        if let Some(&moved) = room.members.get(seat.index) {
            self.seats
                .get_mut(&moved)
                .expect("members have seats")
                .index = seat.index;
        }
        if room.members.is_empty() {
            let room = self.rooms.remove(seat.room);
            self.by_name.remove(&room.name);
            if let Some(changes) = &mut self.changes {
                changes.push((room.name, false));
            }
        }
    }

    /// Keeps the rooms created and removed from now on (see [`Rooms::take_changes`]).
    pub fn watch(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    /// The rooms created (`true`) and removed since the last call, in order.
    pub fn take_changes(&mut self) -> Vec<(Box<str>, bool)> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The name of the room `id` is in, if any.
    pub fn name_of(&self, id: usize) -> Option<&str> {
        let seat = self.seats.get(&id)?;
        Some(&self.rooms[seat.room].name)
    }

    /// The key of the room called `name`, if it has members.
    pub fn key_named(&self, name: &str) -> Option<RoomKey> {
        let &index = self.by_name.get(name)?;
        Some(RoomKey {
            index,
            serial: self.rooms[index].serial,
        })
    }

    /// The members of the room `id` is in (itself included); empty if in none.
    pub fn room_of(&self, id: usize) -> &[usize] {
        self.seats
            .get(&id)
            .map_or(&[], |seat| &self.rooms[seat.room].members)
    }

    /// The key of the room `id` is in, if any.
    pub fn key_of(&self, id: usize) -> Option<RoomKey> {
        let seat = self.seats.get(&id)?;
        Some(RoomKey {
            index: seat.room,
            serial: self.rooms[seat.room].serial,
        })
    }

    /// The members of the room `key` names; empty once that room is gone.
    pub fn members(&self, key: RoomKey) -> &[usize] {
        self.rooms
            .get(key.index)
            .filter(|room| room.serial == key.serial)
            .map_or(&[], |room| &room.members)
    }

    /// How many rooms have members.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room has members.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(ids: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = ids.to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn members_join_leave_and_empty_rooms_go_away() {
        let mut rooms = Rooms::default();
        for i in 0..5 {
            rooms.join(i, if i % 2 == 0 { "even" } else { "odd" });
        }
        assert_eq!(rooms.len(), 2);
        assert_eq!(sorted(rooms.room_of(2)), [0, 2, 4]);
        assert_eq!(sorted(rooms.room_of(1)), [1, 3]);
        // Leaving from the front moves the last member into the gap.
        rooms.leave(0);
        assert_eq!(sorted(rooms.room_of(4)), [2, 4]);
        rooms.leave(4);
        rooms.leave(4);
        assert_eq!(sorted(rooms.room_of(2)), [2]);
        assert!(rooms.room_of(0).is_empty());
        rooms.leave(2);
        assert_eq!(rooms.len(), 1, "the emptied room is gone");
        rooms.join(1, "even");
        assert_eq!(sorted(rooms.room_of(3)), [3]);
        assert_eq!(sorted(rooms.room_of(1)), [1], "joining again moves");
        rooms.leave(1);
        rooms.leave(3);
        assert!(rooms.is_empty() && rooms.by_name.is_empty() && rooms.seats.is_empty());
    }

    #[test]
    fn watched_rooms_tell_when_they_come_and_go() {
        let mut rooms = Rooms::default();
        rooms.join(1, "a");
        assert!(rooms.take_changes().is_empty(), "not watched yet");
        rooms.watch();
        rooms.join(2, "a");
        rooms.join(3, "b");
        rooms.leave(1);
        rooms.leave(2);
        rooms.join(3, "c");
        let changes: Vec<(String, bool)> = rooms
            .take_changes()
            .into_iter()
            .map(|(n, j)| (n.into(), j))
            .collect();
        let want = [("b", true), ("a", false), ("b", false), ("c", true)];
        assert_eq!(changes, want.map(|(n, j)| (n.to_owned(), j)));
        assert!(rooms.take_changes().is_empty());
        assert_eq!(rooms.name_of(3), Some("c"));
        assert_eq!(rooms.key_named("c"), rooms.key_of(3));
        assert_eq!(rooms.key_named("a"), None);
    }

    #[test]
    fn a_room_key_outlives_no_room() {
        let mut rooms = Rooms::default();
        rooms.join(1, "a");
        let key = rooms.key_of(1).unwrap();
        assert_eq!(rooms.members(key), [1]);
        rooms.leave(1);
        rooms.join(2, "b");
        assert!(
            rooms.members(key).is_empty(),
            "not the new room in the old slot"
        );
        assert_eq!(rooms.key_of(1), None);
    }

    #[test]
    fn seats_stay_consistent_under_churn() {
        let mut rooms = Rooms::default();
        let mut model: Vec<Vec<usize>> = vec![Vec::new(); 3];
        let mut x = 7u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let token = (x >> 33) as usize % 20;
            let room = (x >> 20) as usize % 3;
            for m in model.iter_mut() {
                m.retain(|&t| t != token);
            }
            if x & 1 == 0 {
                rooms.join(token, &format!("r{room}"));
                model[room].push(token);
            } else {
                rooms.leave(token);
            }
            for members in &model {
                if let Some(&first) = members.first() {
                    let mut want = members.clone();
                    want.sort_unstable();
                    assert_eq!(sorted(rooms.room_of(first)), want);
                }
            }
            assert_eq!(rooms.len(), model.iter().filter(|m| !m.is_empty()).count());
        }
    }
}
