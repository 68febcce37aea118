//! What the negotiated IRCv3 capabilities change in the bytes a client is
//! sent: the tags before each message (`server-time`'s `time`,
//! `message-tags`' `msgid`, `account-tag`'s `account`, `batch`'s `batch`,
//! `labeled-response`'s `label`) and the `labeled-response` frame around
//! an answer (`ACK` when there is nothing, a `labeled-response` batch when
//! there are several messages).
//!
//! Shared lines (a fan-out's) carry only tags that are the same for every
//! recipient with the same capabilities, so a room line is rendered once
//! per set of [`render_caps`], never per recipient.

use super::caps::{Cap, CapSet};
use super::message::Message;
use crate::tags::{escape_into, write_time_ms};

/// The capabilities that change the bytes of a line a fan-out shares
/// (`extended-join` changes `JOIN`'s):
/// part of a recipient's render key. The others change who gets what
/// (`echo-message`), or only answers (`labeled-response`, `batch`), or
/// nothing a shared line shows.
pub fn render_caps(caps: CapSet) -> CapSet {
    let mut shared = CapSet::EMPTY;
    for cap in [
        Cap::ServerTime,
        Cap::MessageTags,
        Cap::AccountTag,
        Cap::ExtendedJoin,
    ] {
        if caps.contains(cap) {
            shared.insert(cap);
        }
    }
    shared
}

/// The tags one message may carry; each is written only when the
/// recipient's capabilities allow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tags<'a> {
    /// When it happened, Unix milliseconds (`server-time`).
    pub time_ms: Option<i64>,
    /// The room line's id (`message-tags`: `msgid`).
    pub msgid: Option<u64>,
    /// The sender's account, when logged in (`account-tag`).
    pub account: Option<&'a str>,
    /// The batch it belongs to (`batch`).
    pub batch: Option<&'a str>,
    /// The label of the command it answers (`labeled-response`).
    pub label: Option<&'a str>,
}

impl Tags<'_> {
    /// Appends `@TAGS ` for a client with `caps`, or nothing when no tag
    /// applies. Returns whether anything was written.
    pub fn write_prefix(&self, caps: CapSet, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let sep = |out: &mut Vec<u8>| out.push(if out.len() == start { b'@' } else { b';' });
        if let (Some(label), true) = (self.label, caps.contains(Cap::LabeledResponse)) {
            sep(out);
            out.extend_from_slice(b"label=");
            escape_into(label, out);
        }
        if let (Some(batch), true) = (self.batch, caps.contains(Cap::Batch)) {
            sep(out);
            out.extend_from_slice(b"batch=");
            escape_into(batch, out);
        }
        if let (Some(time), true) = (self.time_ms, caps.contains(Cap::ServerTime)) {
            sep(out);
            out.extend_from_slice(b"time=");
            write_time_ms(time, out);
        }
        if let (Some(id), true) = (self.msgid, caps.contains(Cap::MessageTags)) {
            sep(out);
            out.extend_from_slice(b"msgid=");
            out.extend_from_slice(id.to_string().as_bytes());
        }
        if let (Some(account), true) = (self.account, caps.contains(Cap::AccountTag)) {
            sep(out);
            out.extend_from_slice(b"account=");
            escape_into(account, out);
        }
        if out.len() == start {
            return false;
        }
        out.push(b' ');
        true
    }
}

/// Appends `messages` (CR LF terminated IRC messages, as rendered) with
/// `prefix` (`@TAGS `, or empty) before each one.
pub fn prefix_each(prefix: &[u8], messages: &[u8], out: &mut Vec<u8>) {
    if prefix.is_empty() {
        out.extend_from_slice(messages);
        return;
    }
    for message in messages.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(prefix);
        out.extend_from_slice(message);
    }
}

/// Merges tags into a message that may already have some: `@a=1 :x CMD`
/// with prefix `@b=2 ` becomes `@b=2;a=1 :x CMD`.
fn merge_into(prefix: &[u8], message: &[u8], out: &mut Vec<u8>) {
    match message.strip_prefix(b"@") {
        Some(rest) if !prefix.is_empty() => {
            // The prefix without its trailing space, then `;` and the rest.
            out.extend_from_slice(&prefix[..prefix.len() - 1]);
            out.push(b';');
            out.extend_from_slice(rest);
        }
        _ => {
            out.extend_from_slice(prefix);
            out.extend_from_slice(message);
        }
    }
}

/// Whether a message already carries a `batch` tag.
fn in_a_batch(message: &[u8]) -> bool {
    let Some(rest) = message.strip_prefix(b"@") else {
        return false;
    };
    let tags = rest.split(|&b| b == b' ').next().unwrap_or_default();
    tags.split(|&b| b == b';')
        .any(|tag| tag.starts_with(b"batch="))
}

/// The answer to a labelled command, as `labeled-response` frames it:
/// `ACK` when the answer is empty, the label on the one message when there
/// is one, else a `labeled-response` batch (`batch_id` its reference)
/// around all of them. Messages may already carry tags.
pub fn write_labelled(server: &str, label: &str, batch_id: &str, answer: &[u8], out: &mut Vec<u8>) {
    let mut label_tag = Vec::with_capacity(label.len() + 8);
    label_tag.extend_from_slice(b"@label=");
    escape_into(label, &mut label_tag);
    label_tag.push(b' ');
    let count = answer.split_inclusive(|&b| b == b'\n').count();
    match count {
        0 => {
            out.extend_from_slice(&label_tag);
            Message::new("ACK", &[]).from_source(server).write(out);
        }
        1 => merge_into(&label_tag, answer, out),
        _ => {
            out.extend_from_slice(&label_tag);
            let open = format!("+{batch_id}");
            Message::new("BATCH", &[&open, "labeled-response"])
                .from_source(server)
                .write(out);
            let mut batch_tag = Vec::with_capacity(batch_id.len() + 8);
            batch_tag.extend_from_slice(b"@batch=");
            escape_into(batch_id, &mut batch_tag);
            batch_tag.push(b' ');
            for message in answer.split_inclusive(|&b| b == b'\n') {
                if in_a_batch(message) {
                    // Inside a batch of its own (a `chathistory` batch
                    // nested in this one): its opening line carries ours.
                    out.extend_from_slice(message);
                } else {
                    merge_into(&batch_tag, message, out);
                }
            }
            let close = format!("-{batch_id}");
            Message::new("BATCH", &[&close])
                .from_source(server)
                .write(out);
        }
    }
}
