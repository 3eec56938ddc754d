//! Chat rooms: which connections are in which room. Joining and leaving are O(1): a
//! room keeps its members in a vector, each member's seat remembers its index, and a
//! member leaves by swapping the last one into its place.

use std::collections::HashMap;

use mio::Token;
use slab::Slab;

#[derive(Debug)]
struct Room {
    name: Box<str>,
    /// Distinguishes this room from a later one in the same slot (see [`RoomKey`]).
    serial: u64,
    members: Vec<Token>,
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

/// Every room of one reactor process (rooms are not shared between `--workers`).
#[derive(Debug, Default)]
pub struct Rooms {
    by_name: HashMap<Box<str>, usize>,
    rooms: Slab<Room>,
    /// The serial the next new room gets.
    next_serial: u64,
    seats: HashMap<Token, Seat>,
}

impl Rooms {
    /// Puts `token` in the room called `name`, creating the room if it is new. A
    /// connection is in at most one room: joining again moves it.
    pub fn join(&mut self, token: Token, name: &str) {
        self.leave(token);
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
                room
            }
        };
        let members = &mut self.rooms[room].members;
        self.seats.insert(
            token,
            Seat {
                room,
                index: members.len(),
            },
        );
        members.push(token);
    }

    /// Takes `token` out of its room, if it is in one; an emptied room is removed.
    pub fn leave(&mut self, token: Token) {
        let Some(seat) = self.seats.remove(&token) else {
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
        }
    }

    /// The members of the room `token` is in (itself included); empty if in none.
    pub fn room_of(&self, token: Token) -> &[Token] {
        self.seats
            .get(&token)
            .map_or(&[], |seat| &self.rooms[seat.room].members)
    }

    /// The key of the room `token` is in, if any.
    pub fn key_of(&self, token: Token) -> Option<RoomKey> {
        let seat = self.seats.get(&token)?;
        Some(RoomKey {
            index: seat.room,
            serial: self.rooms[seat.room].serial,
        })
    }

    /// The members of the room `key` names; empty once that room is gone.
    pub fn members(&self, key: RoomKey) -> &[Token] {
        self.rooms
            .get(key.index)
            .filter(|room| room.serial == key.serial)
            .map_or(&[], |room| &room.members)
    }

    /// How many rooms have members.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(tokens: &[Token]) -> Vec<usize> {
        let mut v: Vec<usize> = tokens.iter().map(|t| t.0).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn members_join_leave_and_empty_rooms_go_away() {
        let mut rooms = Rooms::default();
        for i in 0..5 {
            rooms.join(Token(i), if i % 2 == 0 { "even" } else { "odd" });
        }
        assert_eq!(rooms.len(), 2);
        assert_eq!(sorted(rooms.room_of(Token(2))), [0, 2, 4]);
        assert_eq!(sorted(rooms.room_of(Token(1))), [1, 3]);
        // Leaving from the front moves the last member into the gap.
        rooms.leave(Token(0));
        assert_eq!(sorted(rooms.room_of(Token(4))), [2, 4]);
        rooms.leave(Token(4));
        rooms.leave(Token(4));
        assert_eq!(sorted(rooms.room_of(Token(2))), [2]);
        assert!(rooms.room_of(Token(0)).is_empty());
        rooms.leave(Token(2));
        assert_eq!(rooms.len(), 1, "the emptied room is gone");
        rooms.join(Token(1), "even");
        assert_eq!(sorted(rooms.room_of(Token(3))), [3]);
        assert_eq!(sorted(rooms.room_of(Token(1))), [1], "joining again moves");
        rooms.leave(Token(1));
        rooms.leave(Token(3));
        assert!(rooms.is_empty() && rooms.by_name.is_empty() && rooms.seats.is_empty());
    }

    #[test]
    fn a_room_key_outlives_no_room() {
        let mut rooms = Rooms::default();
        rooms.join(Token(1), "a");
        let key = rooms.key_of(Token(1)).unwrap();
        assert_eq!(rooms.members(key), [Token(1)]);
        rooms.leave(Token(1));
        rooms.join(Token(2), "b");
        assert!(
            rooms.members(key).is_empty(),
            "not the new room in the old slot"
        );
        assert_eq!(rooms.key_of(Token(1)), None);
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
                rooms.join(Token(token), &format!("r{room}"));
                model[room].push(token);
            } else {
                rooms.leave(Token(token));
            }
            for members in &model {
                if let Some(&first) = members.first() {
                    let mut want = members.clone();
                    want.sort_unstable();
                    assert_eq!(sorted(rooms.room_of(Token(first))), want);
                }
            }
            assert_eq!(rooms.len(), model.iter().filter(|m| !m.is_empty()).count());
        }
    }
}
