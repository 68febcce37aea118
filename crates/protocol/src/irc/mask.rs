//! Masks (Modern IRC documents, "Wildcard Expressions"): `?` matches one
//! character, `*` any number, `\` escapes either; names compare with
//! `CASEMAPPING=ascii`. Bans (`MODE #c +b nick!*@*`) and `WHO` masks use
//! them; the IRC WebSocket subprotocols are chosen here too.

/// Whether `text` matches `mask`, ASCII case-insensitively. Linear in
/// memory, at most `mask.len() × text.len()` steps (a `*` backtracks only
/// to the last `*`).
pub fn matches(mask: &str, text: &str) -> bool {
    let mask: Vec<Token> = tokens(mask).collect();
    let text = text.as_bytes();
    let (mut m, mut t) = (0, 0);
    // Where to resume after the last `*`: (mask index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match mask.get(m) {
            Some(Token::Many) => {
                star = Some((m + 1, t));
                m += 1;
                continue;
            }
            Some(Token::One) => {
                // One character: skip its UTF-8 continuation bytes.
                t += char_len(text[t]);
                m += 1;
                continue;
            }
            Some(Token::Byte(b)) if b.eq_ignore_ascii_case(&text[t]) => {
                m += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, from)) => {
                let next = from + char_len(text[from]);
                star = Some((after, next));
                m = after;
                t = next;
            }
            None => return false,
        }
    }
    mask[m..].iter().all(|token| *token == Token::Many)
}

/// The length of the UTF-8 character starting with `lead` (1 for a stray
/// continuation byte, so matching always moves on).
fn char_len(lead: u8) -> usize {
    match lead {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    One,
    Many,
    Byte(u8),
}

fn tokens(mask: &str) -> impl Iterator<Item = Token> + '_ {
    let mut bytes = mask.bytes();
    std::iter::from_fn(move || {
        Some(match bytes.next()? {
            b'?' => Token::One,
            b'*' => Token::Many,
            b'\\' => Token::Byte(bytes.next().unwrap_or(b'\\')),
            b => Token::Byte(b),
        })
    })
}

/// The `nick!user@host` every loopchat user shows IRC clients: the nick
/// is also the user name, the host the server's name.
pub fn nickmask(nick: &str, server: &str) -> String {
    format!("{nick}!{nick}@{server}")
}

/// The ban mask `NICK!*@*` as the protocol's `:ban NICK` sets it; `None`
/// for any other shape (the server bans by nick only).
pub fn banned_nick(mask: &str) -> Option<&str> {
    let nick = mask.strip_suffix("!*@*")?;
    crate::is_valid_name(nick).then_some(nick)
}

/// IRC over WebSocket's subprotocols (IRCv3 `websocket`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subprotocol {
    /// `text.ircv3.net`: text frames, UTF-8 only.
    Text,
    /// `binary.ircv3.net`: binary frames.
    Binary,
}

impl Subprotocol {
    /// Its name in `Sec-WebSocket-Protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Subprotocol::Text => "text.ircv3.net",
            Subprotocol::Binary => "binary.ircv3.net",
        }
    }
}

/// The subprotocol to answer for a `Sec-WebSocket-Protocol` header (its
/// values joined with `,`): the first IRC one the client lists, honouring
/// its order; `None` when it offers neither (the line protocol).
pub fn choose_subprotocol(offered: &str) -> Option<Subprotocol> {
    offered
        .split(',')
        .map(str::trim)
        .find_map(|name| match name {
            "text.ircv3.net" => Some(Subprotocol::Text),
            "binary.ircv3.net" => Some(Subprotocol::Binary),
            _ => None,
        })
}
