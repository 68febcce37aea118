//! `:history` as the chat state answers it: from the current room's tail
//! in memory, or, while that tail is being read from the history file, once
//! it has arrived ([`Chat::take_ready_history_waits`]).

use super::{Awaited, Chat, ClientId, Outbox, Outcome};
use crate::chat::history::tails::unix_now_ms;
use crate::chat::history::Tails;
use crate::chat::rooms::Refusal;
use crate::protocol::tags::Label;
use crate::protocol::{self, Error, Missing, Reply, ServerLine};

impl Chat {
    /// `:history [N]`: the header, then the current room's newest N lines
    /// from memory, oldest first; a last `! history incomplete: ...` line
    /// when some of the room's lines could not be written to the history
    /// file.
    pub(super) fn history(
        &mut self,
        id: ClientId,
        arg: Option<&str>,
        out: &mut impl Outbox,
    ) -> Outcome {
        let Some(room) = self.rooms.current(id).and_then(|room| self.rooms.get(room)) else {
            out.reply(id, &self.refusal(Refusal::NoCurrentRoom, ""));
            return Outcome::CONTINUE;
        };
        let Some(n) = protocol::history_count(arg, self.history.keep()) else {
            out.reply(id, &Error::Usage(protocol::HISTORY_USAGE).into());
            return Outcome::CONTINUE;
        };
        if self.history.is_loading(room.key()) {
            // Its older lines are on their way from the history file.
            self.history_waits.push(HistoryWait {
                id,
                room_key: room.key().to_string(),
                room_name: room.name().to_string(),
                n,
                label: self.label,
            });
            return Outcome {
                waits_for: Some(Awaited::HistoryTail),
                ..Outcome::CONTINUE
            };
        }
        history_answer(&self.history, room.key(), room.name(), n, |line| {
            out.reply(id, line)
        });
        Outcome::CONTINUE
    }

    /// Forgets the `:history` commands a connection still waits for: it is
    /// gone, and its id may be given to the next one. (A client that left
    /// the chat by `:quit` still gets its answers before its `* bye`.)
    pub fn forget_history_waits(&mut self, id: ClientId) {
        self.history_waits.retain(|wait| wait.id != id);
    }

    /// Takes the `:history` commands whose rooms' tails have arrived, in
    /// the order they were asked; [`Chat::history_answer`] answers each.
    pub fn take_ready_history_waits(&mut self) -> Vec<HistoryWait> {
        let history = &self.history;
        let (ready, waiting) = std::mem::take(&mut self.history_waits)
            .into_iter()
            .partition(|wait| !history.is_loading(&wait.room_key));
        self.history_waits = waiting;
        ready
    }

    /// The whole answer to a `:history` that waited for its room's tail,
    /// line by line.
    pub fn history_answer(&self, wait: &HistoryWait, each: impl FnMut(&ServerLine<'_>)) {
        history_answer(&self.history, &wait.room_key, &wait.room_name, wait.n, each);
    }
}

/// A `:history` waiting for its room's tail to be loaded.
#[derive(Debug)]
pub struct HistoryWait {
    /// Who asked.
    pub id: ClientId,
    room_key: String,
    /// The room's spelling when asked.
    room_name: String,
    n: usize,
    /// The label of the `:history` line, for every line of its answer.
    pub label: Option<Label>,
}

/// The lines answering `:history N` in a room, each handed to `each`: the
/// header, the newest `n` lines oldest first, and a last `! history
/// incomplete: ...` line when some of the room's lines are missing.
fn history_answer(
    history: &Tails,
    room_key: &str,
    room: &str,
    n: usize,
    mut each: impl FnMut(&ServerLine<'_>),
) {
    let lines = history.recent(room_key, n, unix_now_ms());
    each(
        &Reply::HistoryHeader {
            room,
            count: lines.len(),
        }
        .into(),
    );
    for entry in lines {
        each(
            &Reply::HistoryLine {
                time_ms: entry.ts,
                line: &entry.line,
                room: Some(room),
                id: u64::try_from(entry.id).ok(),
            }
            .into(),
        );
    }
    let unsaved = usize::try_from(history.unsaved(room_key)).unwrap_or(usize::MAX);
    if unsaved > 0 {
        let missing = if history.persists() {
            Missing::Unsaved(unsaved)
        } else {
            Missing::Dropped(unsaved)
        };
        each(&Error::HistoryIncomplete { room, missing }.into());
    }
    if history.unreadable(room_key) {
        each(
            &Error::HistoryIncomplete {
                room,
                missing: Missing::Unreadable,
            }
            .into(),
        );
    }
}
