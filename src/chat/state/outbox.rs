//! [`Outbox`]: where the chat state puts the lines it produces, and
//! [`Delivery`], how one copy of a line is meant for its recipient.

use super::ClientId;
use crate::protocol::ServerLine;

/// How one copy of a line is meant for its recipient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// It answers the recipient's own command (or its arrival), so the
    /// server holds it back while the recipient waits for earlier work
    /// (its chat lines' history commit).
    pub answer: bool,
    /// A room line of a room that is not the recipient's current room:
    /// with tags off it is written with the `[ROOM] ` prefix.
    pub prefixed: bool,
}

impl Delivery {
    /// An answer to the recipient's own command, no prefix.
    pub const ANSWER: Delivery = Delivery {
        answer: true,
        prefixed: false,
    };

    /// A line the recipient did not ask for, no prefix.
    pub const PLAIN: Delivery = Delivery {
        answer: false,
        prefixed: false,
    };
}

/// Where the chat state puts the lines it produces. A recipient that can no
/// longer take output is the outbox's business: the chat state never needs
/// to know.
///
/// An implementation provides [`Outbox::queue`] (and [`Outbox::new_line`]
/// when it caches renderings); the chat state calls the provided methods,
/// which say who a line is for, whether it is an answer and whether it
/// comes from a room that is not the recipient's current one.
pub trait Outbox {
    /// Queues the current line (see [`Outbox::new_line`]) for client `to`,
    /// as `how` says.
    fn queue(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery);

    /// A new line begins: the same line is queued for each of its
    /// recipients before the next begins, so it is rendered once per
    /// encoding among them, never once per recipient. Nothing by default.
    fn new_line(&mut self) {}

    /// The next fan-out's line comes from a client logged in to `account`
    /// (IRC's `account-tag` and `extended-join` show it), or from one
    /// that is not (`None`); it holds for that fan-out only. Ignored by
    /// default.
    fn sender_account(&mut self, _account: Option<&str>) {}

    /// The next fan-out's line as the line dialect writes it to members
    /// whose current room it is (no prefix, no tags, with its `\n`),
    /// rendered already (the history keeps it so): the fan-out may take
    /// it instead of rendering it again. It holds for that fan-out only.
    /// Ignored by default.
    fn rendered_plain(&mut self, _bytes: &[u8]) {}

    /// Told what the chat did, for the server's metrics; ignored by default.
    fn note(&mut self, _event: super::ChatEvent) {}

    /// Client `to` turned tags on or off (protocol 1.2): from now on its
    /// lines are written tagged, or not. Called before the answer is
    /// queued, so `* tags on` is tagged and `* tags off` is not, as the
    /// protocol says. Ignored by default.
    fn set_tags(&mut self, _to: ClientId, _on: bool) {}

    /// The command being run carried `label` (a client with tags on sent
    /// `@label=L …`): every answer queued until the next call (`None`)
    /// carries it. Ignored by default.
    fn answering(&mut self, _label: Option<crate::protocol::tags::Label>) {}

    /// Queues `line` for client `to` as the answer to its own command (or
    /// its arrival).
    fn reply(&mut self, to: ClientId, line: &ServerLine<'_>) {
        self.send(to, line, Delivery::ANSWER);
    }

    /// Queues `line` for client `to`, who did not ask for it (a private
    /// message).
    fn deliver(&mut self, to: ClientId, line: &ServerLine<'_>) {
        self.send(to, line, Delivery::PLAIN);
    }

    /// Queues `line` for one client, as `how` says: a line of its own.
    fn send(&mut self, to: ClientId, line: &ServerLine<'_>, how: Delivery) {
        self.new_line();
        self.queue(to, line, how);
    }

    /// Queues `line` for every client in `current` (members whose current
    /// room is the line's room: no prefix) and in `others` (members of the
    /// room whose current room is another: prefixed), but `except`: a
    /// fan-out, one line for all, at most one rendering per encoding.
    /// `asker`, when among them, gets its copy as an answer (as by
    /// [`Outbox::reply`]). A line that is not a room line (a rename) goes
    /// to `current` only. Returns how many it went to.
    fn fan_out(
        &mut self,
        current: &[ClientId],
        others: &[ClientId],
        except: Option<ClientId>,
        asker: Option<ClientId>,
        line: &ServerLine<'_>,
    ) -> usize {
        self.new_line();
        let mut recipients = 0;
        for (members, prefixed) in [(current, false), (others, true)] {
            for &member in members {
                if Some(member) != except {
                    let answer = Some(member) == asker;
                    self.queue(member, line, Delivery { answer, prefixed });
                    recipients += 1;
                }
            }
        }
        recipients
    }
}
