//! Protocol 1.2's tags as the chat state sees them: `:tags on|off` (the
//! flag per member, which decides echoes and whether labels are read),
//! and the tag prefix read off a client line with its label, which every
//! answer to the line carries ([`Outbox::answering`]). How lines are
//! tagged is the outbox's business; what they carry (`Stamp`s, `to`,
//! history ids) is set by the commands that send them.

use super::{Chat, ClientId, Member, Outbox, Outcome};
use crate::protocol::tags::{self, ClientLine, Label, TagError};
use crate::protocol::{Command, Reply};

impl Chat {
    /// Whether client `id` has tags on.
    pub fn tags_on(&self, id: ClientId) -> bool {
        matches!(self.members.get(id), Some(Some(Member::Joined(joined))) if joined.tags)
    }

    /// A line from client `id` with its tag prefix taken off, when it has
    /// tags on (with tags off a line starting with `@` is chat). An error
    /// is answered `! bad tags`, without a label: the prefix is not
    /// trusted.
    pub fn client_line<'a>(&self, id: ClientId, line: &'a str) -> Result<ClientLine<'a>, TagError> {
        if line.starts_with('@') && self.tags_on(id) {
            tags::parse_client_line(line)
        } else {
            Ok(ClientLine { label: None, line })
        }
    }

    /// [`Chat::apply`] for a line that carried `label`: every answer to it
    /// carries the label ([`Outbox::answering`]), a waiting `:history`'s
    /// included.
    pub fn apply_labelled(
        &mut self,
        id: ClientId,
        line: &str,
        command: Command<'_>,
        label: Option<Label>,
        out: &mut impl Outbox,
    ) -> Outcome {
        if label.is_none() {
            return self.apply(id, line, command, out);
        }
        self.label = label;
        out.answering(label);
        let outcome = self.apply(id, line, command, out);
        out.answering(None);
        self.label = None;
        outcome
    }

    /// An IRC client's `echo-message` (`on`): as with tags on, it gets its
    /// own room lines, `:me` and private messages back, as answers to its
    /// command. Nothing is answered (IRC has no such line); labels are
    /// not read from IRC lines.
    pub fn set_echo(&mut self, id: ClientId, on: bool) {
        if let Some(Some(Member::Joined(me))) = self.members.get_mut(id) {
            me.tags = on;
        }
    }

    /// `:tags on|off`. The outbox hears of it before the answer is
    /// queued: `* tags on` is itself tagged, `* tags off` is not.
    pub(super) fn set_tags(&mut self, id: ClientId, on: bool, out: &mut impl Outbox) -> Outcome {
        let Some(Some(Member::Joined(me))) = self.members.get_mut(id) else {
            return Outcome::CONTINUE;
        };
        me.tags = on;
        out.set_tags(id, on);
        let answer = if on { Reply::TagsOn } else { Reply::TagsOff };
        out.reply(id, &answer.into());
        Outcome {
            tags: Some(on),
            ..Outcome::CONTINUE
        }
    }
}
