//! IRCv3 capabilities: the ones the server can offer (design notes, part
//! A, in the order that pays most) and a set of them in one integer.

/// A capability the server can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cap {
    /// `cap-notify`: implied by `CAP LS 302`.
    CapNotify,
    /// `message-tags` (the `msgid` tag is the room line's `id`).
    MessageTags,
    /// `server-time`: the `time` tag.
    ServerTime,
    /// `echo-message`: the sender gets its own messages back.
    EchoMessage,
    /// `batch`.
    Batch,
    /// `labeled-response`: the `label` tag.
    LabeledResponse,
    /// `multi-prefix`.
    MultiPrefix,
    /// `userhost-in-names`.
    UserhostInNames,
    /// `account-tag`.
    AccountTag,
    /// `extended-join`.
    ExtendedJoin,
    /// `sasl` (value `PLAIN`): offered once accounts exist.
    Sasl,
    /// `draft/chathistory`: history from the history store.
    ChatHistory,
}

impl Cap {
    /// Every capability, in the order `CAP LS` lists them.
    pub const ALL: [Cap; 12] = [
        Cap::CapNotify,
        Cap::MessageTags,
        Cap::ServerTime,
        Cap::EchoMessage,
        Cap::Batch,
        Cap::LabeledResponse,
        Cap::MultiPrefix,
        Cap::UserhostInNames,
        Cap::AccountTag,
        Cap::ExtendedJoin,
        Cap::Sasl,
        Cap::ChatHistory,
    ];

    /// Its name in `CAP` messages.
    pub const fn name(self) -> &'static str {
        match self {
            Cap::CapNotify => "cap-notify",
            Cap::MessageTags => "message-tags",
            Cap::ServerTime => "server-time",
            Cap::EchoMessage => "echo-message",
            Cap::Batch => "batch",
            Cap::LabeledResponse => "labeled-response",
            Cap::MultiPrefix => "multi-prefix",
            Cap::UserhostInNames => "userhost-in-names",
            Cap::AccountTag => "account-tag",
            Cap::ExtendedJoin => "extended-join",
            Cap::Sasl => "sasl",
            Cap::ChatHistory => "draft/chathistory",
        }
    }

    /// Its value in `CAP LS 302`, if it has one.
    pub const fn value(self) -> Option<&'static str> {
        match self {
            Cap::Sasl => Some("PLAIN"),
            _ => None,
        }
    }

    /// The capability called `name` (exact, as IRCv3 names are).
    pub fn from_name(name: &str) -> Option<Cap> {
        Cap::ALL.into_iter().find(|cap| cap.name() == name)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(u16);

impl CapSet {
    /// No capability.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set with `cap` added (for constants).
    pub const fn with(self, cap: Cap) -> CapSet {
        CapSet(self.0 | 1 << cap as u16)
    }

    /// The capabilities in `caps`.
    pub fn of(caps: &[Cap]) -> CapSet {
        let mut set = CapSet::EMPTY;
        for &cap in caps {
            set.insert(cap);
        }
        set
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Adds `cap`.
    pub fn insert(&mut self, cap: Cap) {
        self.0 |= cap.bit();
    }

    /// Removes `cap`.
    pub fn remove(&mut self, cap: Cap) {
        self.0 &= !cap.bit();
    }

    /// The capabilities in the set, in [`Cap::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        Cap::ALL.into_iter().filter(move |&cap| self.contains(cap))
    }

    /// The set as `CAP` lists it: names separated by spaces, with
    /// `=VALUE` after those that have one when `values` (`CAP LS 302`).
    pub fn to_list(self, values: bool) -> String {
        let mut out = String::new();
        for cap in self.iter() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(cap.name());
            if let (true, Some(value)) = (values, cap.value()) {
                out.push('=');
                out.push_str(value);
            }
        }
        out
    }

    /// `CAP REQ`'s list applied to `enabled`: each name enables its
    /// capability, `-name` disables it. All or nothing (IRCv3): `None`
    /// when any name is not in `offered`, or the list is empty.
    pub fn apply_request(enabled: CapSet, list: &str, offered: CapSet) -> Option<CapSet> {
        let mut caps = enabled;
        let mut any = false;
        for word in list.split(' ').filter(|word| !word.is_empty()) {
            any = true;
            let (remove, name) = match word.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, word),
            };
            let cap = Cap::from_name(name).filter(|&cap| offered.contains(cap))?;
            if remove {
                caps.remove(cap);
            } else {
                caps.insert(cap);
            }
        }
        any.then_some(caps)
    }
}
