//! The input line: a string with a cursor, readline-style editing, history
//! and Tab completion. Positions are byte offsets that always sit on a
//! grapheme boundary, so the cursor never splits an emoji or an accented
//! letter; widths on screen come from `unicode-width`.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// The server's commands and the client's own end-to-end ones, for Tab
/// completion at the start of a line.
pub const COMMANDS: &[&str] = &[
    ":auth",
    ":ban",
    ":bans",
    ":deop",
    ":e2e",
    ":e2e-accept",
    ":e2e-safety",
    ":e2e-verify",
    ":help",
    ":history",
    ":join",
    ":key",
    ":kick",
    ":login",
    ":logout",
    ":me",
    ":msg",
    ":nick",
    ":op",
    ":part",
    ":passwd",
    ":ping",
    ":pm",
    ":quit",
    ":register",
    ":resume",
    ":rooms",
    ":token",
    ":topic",
    ":unban",
    ":users",
    ":whois",
];

/// How many submitted lines Up/Down can recall.
const HISTORY: usize = 500;

#[derive(Default)]
pub struct Editor {
    text: String,
    cursor: usize,
    /// Submitted lines, oldest first.
    history: Vec<String>,
    /// While browsing history: the entry shown, and the line being typed
    /// before browsing began.
    browsing: Option<(usize, String)>,
    completion: Option<Completion>,
}

/// A Tab completion in progress: pressing Tab again cycles.
struct Completion {
    /// Where the completed word starts.
    start: usize,
    candidates: Vec<String>,
    index: usize,
}

impl Editor {
    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Any key but Tab ends a completion.
    fn edited(&mut self) {
        self.completion = None;
    }

    pub fn insert(&mut self, c: char) {
        // Control characters (a pasted ESC) never go into the line.
        if c.is_control() {
            return;
        }
        self.edited();
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Pasted text: line breaks and tabs become spaces, other controls go.
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\r' => {}
                '\n' | '\t' => self.insert(' '),
                c => self.insert(c),
            }
        }
    }

    fn prev_boundary(&self, from: usize) -> usize {
        self.text[..from]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self, from: usize) -> usize {
        self.text[from..]
            .graphemes(true)
            .next()
            .map_or(from, |g| from + g.len())
    }

    pub fn left(&mut self) {
        self.edited();
        self.cursor = self.prev_boundary(self.cursor);
    }

    pub fn right(&mut self) {
        self.edited();
        self.cursor = self.next_boundary(self.cursor);
    }

    pub fn home(&mut self) {
        self.edited();
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.edited();
        self.cursor = self.text.len();
    }

    /// The start of the word before the cursor (readline's Ctrl-Left).
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(' ');
        trimmed.rfind(' ').map_or(0, |i| i + 1)
    }

    fn word_end(&self) -> usize {
        let after = &self.text[self.cursor..];
        let skipped = after.len() - after.trim_start_matches(' ').len();
        let rest = &after[skipped..];
        self.cursor + skipped + rest.find(' ').unwrap_or(rest.len())
    }

    pub fn word_left(&mut self) {
        self.edited();
        self.cursor = self.word_start();
    }

    pub fn word_right(&mut self) {
        self.edited();
        self.cursor = self.word_end();
    }

    pub fn backspace(&mut self) {
        self.edited();
        let start = self.prev_boundary(self.cursor);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub fn delete(&mut self) {
        self.edited();
        let end = self.next_boundary(self.cursor);
        self.text.replace_range(self.cursor..end, "");
    }

    /// Ctrl-W.
    pub fn delete_word(&mut self) {
        self.edited();
        let start = self.word_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U.
    pub fn kill_to_start(&mut self) {
        self.edited();
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Ctrl-K.
    pub fn kill_to_end(&mut self) {
        self.edited();
        self.text.truncate(self.cursor);
    }

    /// Enter: returns the line and clears the editor; the line joins the
    /// history unless it is an `:auth`.
    pub fn submit(&mut self) -> String {
        self.edited();
        self.browsing = None;
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        // A password is not kept for Up to show again.
        let secret = line
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case(":auth "));
        if !line.is_empty() && !secret && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        line
    }

    fn show(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    /// Up: the previous submitted line.
    pub fn history_up(&mut self) {
        self.edited();
        let index = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                let draft = self.text.clone();
                self.browsing = Some((self.history.len(), draft));
                self.history.len() - 1
            }
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
        };
        if let Some((i, _)) = &mut self.browsing {
            *i = index;
        }
        self.show(self.history[index].clone());
    }

    /// Down: the next submitted line, and finally the line being typed.
    pub fn history_down(&mut self) {
        self.edited();
        let Some((i, draft)) = self.browsing.take() else {
            return;
        };
        if i + 1 < self.history.len() {
            self.browsing = Some((i + 1, draft));
            self.show(self.history[i + 1].clone());
        } else {
            self.show(draft);
        }
    }

    /// Tab: completes the word before the cursor from `nicks` (or, for the
    /// first word of a line starting with `:` or `/`, the commands; after
    /// `:join`, the `rooms`). Pressing Tab again cycles through the candidates.
    pub fn complete(&mut self, nicks: &[String], rooms: &[String]) {
        if let Some(completion) = &mut self.completion {
            completion.index = (completion.index + 1) % completion.candidates.len();
            let (start, word) = (
                completion.start,
                completion.candidates[completion.index].clone(),
            );
            self.replace_word(start, &word);
            return;
        }
        let start = self.word_start();
        let word = &self.text[start..self.cursor];
        if word.contains(' ') {
            return;
        }
        let first_word = self.text[..start].trim().is_empty();
        let command = self
            .text
            .split(' ')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // Commands typed as in IRC (`/join`) complete as they were begun.
        let slash = word.starts_with('/');
        let pool: Vec<String> = if first_word && (word.starts_with(':') || slash) {
            let lead = if slash { "/" } else { ":" };
            COMMANDS
                .iter()
                .map(|c| format!("{lead}{} ", &c[1..]))
                .collect()
        } else if matches!(
            command.trim_start_matches(['/', ':']),
            "join" | "part" | "users"
        ) && !first_word
        {
            rooms.iter().map(|r| format!("{r} ")).collect()
        } else if first_word {
            // Addressing someone at the start of a chat line.
            nicks.iter().map(|n| format!("{n}: ")).collect()
        } else {
            nicks.iter().map(|n| format!("{n} ")).collect()
        };
        let lower = word.to_lowercase();
        let candidates: Vec<String> = pool
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&lower))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let first = candidates[0].clone();
        self.replace_word(start, &first);
        self.completion = Some(Completion {
            start,
            candidates,
            index: 0,
        });
    }

    fn replace_word(&mut self, start: usize, word: &str) {
        self.text.replace_range(start..self.cursor, word);
        self.cursor = start + word.len();
    }

    /// What fits in `width` columns with the cursor in view: the visible
    /// text and the cursor's column within it.
    pub fn view(&self, width: usize) -> (String, usize) {
        let width = width.max(1);
        let before = &self.text[..self.cursor];
        // Drop graphemes from the left until the cursor fits (leaving one
        // column for the cursor itself at the end of the line).
        let mut start = 0;
        while before[start..].width() >= width {
            start = self.next_boundary(start);
        }
        let mut shown = String::new();
        let mut used = 0;
        for g in self.text[start..].graphemes(true) {
            let w = g.width();
            if used + w > width {
                break;
            }
            shown.push_str(g);
            used += w;
        }
        (shown, before[start..].width())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        e.insert_str(s);
        e
    }

    #[test]
    fn editing_moves_by_graphemes() {
        let mut e = typed("héllo 世界👍🏽");
        e.backspace();
        assert_eq!(e.text(), "héllo 世界");
        e.left();
        e.left();
        e.insert('x');
        assert_eq!(e.text(), "héllo x世界");
        e.home();
        e.delete();
        assert_eq!(e.text(), "éllo x世界");
        e.end();
        e.delete_word();
        assert_eq!(e.text(), "éllo ");
        e.word_left();
        e.kill_to_end();
        assert_eq!(e.text(), "");
    }

    #[test]
    fn pasted_controls_are_dropped_and_breaks_become_spaces() {
        let e = typed("a\x1b[31mb\r\nc\td");
        assert_eq!(e.text(), "a[31mb c d");
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut e = typed("one");
        e.submit();
        e.insert_str(":AUTH secret");
        e.submit();
        e.insert_str("two");
        e.submit();
        e.insert_str("draft");
        e.history_up();
        assert_eq!(e.text(), "two");
        e.history_up();
        assert_eq!(e.text(), "one");
        e.history_up();
        assert_eq!(e.text(), "one");
        e.history_down();
        assert_eq!(e.text(), "two");
        e.history_down();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn tab_completes_nicks_commands_and_rooms_and_cycles() {
        let nicks = vec!["alice".to_string(), "Alan".to_string(), "bob".to_string()];
        let rooms = vec!["#lobby".to_string(), "#rust".to_string()];
        let mut e = typed("al");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), "alice: ");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), "Alan: ");
        let mut e = typed("hi B");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), "hi bob ");
        let mut e = typed(":ni");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), ":nick ");
        let mut e = typed(":join #r");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), ":join #rust ");
        let mut e = typed("/ni");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), "/nick ");
        let mut e = typed("/join #r");
        e.complete(&nicks, &rooms);
        assert_eq!(e.text(), "/join #rust ");
    }

    #[test]
    fn the_view_keeps_the_cursor_visible_with_wide_characters() {
        let e = typed("世界世界世界");
        let (shown, col) = e.view(5);
        assert_eq!((shown.as_str(), col), ("世界", 4));
        let mut e = typed("abcdef");
        e.home();
        assert_eq!(e.view(4), ("abcd".to_string(), 0));
    }
}
