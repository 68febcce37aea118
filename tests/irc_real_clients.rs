//! Real IRC clients in one chat with a line client and the page: Debian's
//! `irssi` in tmux and `weechat-headless` typed into through its fifo
//! (`tests/irc_clients/`), a TCP line client, and the chat page in
//! headless chromium (`tests/common/browser.rs`). Each IRC client joins a
//! channel, exchanges lines both ways with the other two, uses `/me`,
//! `/topic` and `/whois`, and quits cleanly; the test reads what each
//! client shows (irssi's screen, WeeChat's buffer logs, the page's log,
//! the line client's lines).
//!
//! CI (`CI=true`) installs irssi, weechat-headless, weechat-plugins, tmux
//! and chromium, and never skips these; elsewhere they skip with a printed
//! reason when a tool is missing.

mod common;
mod irc_clients;

use common::browser::{tools_or_skip, Browser};
use common::{Client, Lines};
use irc_clients::{tool, weechat_fifo_plugin, Irssi, Weechat};
use loopchat::RunningServer;

/// The channel the test meets in: a new one, so the IRC client creates it
/// and is its operator (it may set the topic).
const CHANNEL: &str = "#real";

/// What the scenario needs of a real IRC client.
trait RealClient {
    /// Its nick.
    fn nick(&self) -> &str;
    /// `/join CHANNEL` (from the window it starts in).
    fn join(&self);
    /// Types `text` (a line or a command) in the channel's window.
    fn type_in_channel(&self, text: &str);
    /// Waits until the channel's window shows a line with all of `parts`.
    fn channel_shows(&self, parts: &[&str]) -> String;
    /// `/whois NICK`; returns what the client showed once the reply ended.
    fn whois(&self, nick: &str) -> String;
    /// `/quit MESSAGE`, and waits until the client has exited.
    fn quit(self: Box<Self>, message: &str);
}

/// Whether one line of `shown` holds every part.
fn has_line(shown: &str, parts: &[&str]) -> bool {
    shown
        .lines()
        .any(|line| parts.iter().all(|part| line.contains(part)))
}

struct IrssiClient(Irssi, String);

impl RealClient for IrssiClient {
    fn nick(&self) -> &str {
        &self.1
    }

    fn join(&self) {
        self.0.send(&format!("/join {CHANNEL}"));
    }

    fn type_in_channel(&self, text: &str) {
        self.0.send(text);
    }

    fn channel_shows(&self, parts: &[&str]) -> String {
        self.0
            .wait_for(&format!("{parts:?}"), |screen| has_line(screen, parts))
    }

    fn whois(&self, nick: &str) -> String {
        self.0.send(&format!("/whois {nick}"));
        // irssi shows replies without a channel in its status window.
        self.0.send("/window 1");
        let shown = self.0.wait_text("End of WHOIS");
        self.0.send(&format!("/window goto {CHANNEL}"));
        self.0.wait_text(&format!("[{CHANNEL}]"));
        shown
    }

    fn quit(self: Box<Self>, message: &str) {
        self.0.quit(message);
    }
}

struct WeechatClient(Weechat, String);

impl WeechatClient {
    fn channel_buffer() -> String {
        format!("irc.test.{CHANNEL}")
    }
}

impl RealClient for WeechatClient {
    fn nick(&self) -> &str {
        &self.1
    }

    fn join(&self) {
        // The channel's buffer does not exist yet: the server's does.
        self.0.send("irc.server.test", &format!("/join {CHANNEL}"));
    }

    fn type_in_channel(&self, text: &str) {
        self.0.send(&Self::channel_buffer(), text);
    }

    fn channel_shows(&self, parts: &[&str]) -> String {
        self.0
            .wait_for_log(&Self::channel_buffer(), &format!("{parts:?}"), |log| {
                has_line(log, parts)
            })
    }

    fn whois(&self, nick: &str) -> String {
        self.0
            .send(&Self::channel_buffer(), &format!("/whois {nick}"));
        // WeeChat shows WHOIS replies in the server's buffer.
        self.0
            .wait_for_log("irc.server.test", "the end of WHOIS", |log| {
                has_line(log, &[&format!("[{nick}]"), "End of"])
            })
    }

    fn quit(self: Box<Self>, message: &str) {
        self.0.quit(message);
    }
}

/// A server with IRC on, and its addresses.
fn server() -> RunningServer {
    common::start_with(|config| config.server_name = "irc.test".to_string())
}

/// The page open at `url`, named `nick`, in [`CHANNEL`]; `tcp` (in the
/// channel already) sees it arrive.
fn open_page(browser: &Browser, url: &str, nick: &str, tcp: &mut Client) {
    browser.open(url);
    browser.wait_until(
        "the page's welcome",
        "return document.querySelector('#status').classList.contains('online') \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    browser.say(&format!(":nick {nick}"));
    browser.wait_for_line(&format!("is now known as {nick}"));
    browser.say(&format!(":join {CHANNEL}"));
    tcp.skip_until(&format!("* {nick} joined {CHANNEL}"));
    browser.wait_until(
        "the page in the channel",
        &format!("return document.querySelector('#room-name').textContent === '{CHANNEL}';"),
    );
}

/// The scenario, the same for each client: `start` starts it against the
/// IRC address.
fn chat_with(start: impl FnOnce(std::net::SocketAddr) -> Box<dyn RealClient>) {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = server();
    let irc_addr = server.irc_addr().expect("the IRC address is on");
    let client = start(irc_addr);
    let nick = client.nick().to_string();

    // The IRC client makes the channel (and is its operator); the line
    // client and the page join it.
    client.join();
    client.channel_shows(&["has joined", CHANNEL]);
    let mut tcp = Client::named(server.addr(), "term");
    tcp.send(&format!(":join {CHANNEL}"));
    tcp.skip_until(&format!("* term joined {CHANNEL}"));
    client.channel_shows(&["term", "joined"]);
    let browser = Browser::start(&chromium, &chromedriver);
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    open_page(&browser, &url, "page", &mut tcp);
    client.channel_shows(&["page", "joined"]);

    // Lines both ways, with the line client and with the page.
    client.type_in_channel(&format!("hello from {nick}"));
    tcp.skip_until(&format!("{nick}: hello from {nick}"));
    browser.wait_for_line(&format!("{nick} hello from {nick}"));
    tcp.send("hello from the terminal");
    client.channel_shows(&["term", "hello from the terminal"]);
    browser.say("hello from the page");
    client.channel_shows(&["page", "hello from the page"]);
    tcp.skip_until("page: hello from the page");

    // /me both ways.
    client.type_in_channel("/me waves");
    tcp.skip_until(&format!("* {nick} waves"));
    browser.wait_for_line(&format!("{nick} waves"));
    tcp.send(":me nods");
    client.channel_shows(&["term nods"]);
    browser.say(":me smiles");
    client.channel_shows(&["page smiles"]);

    // /topic, as the channel's operator.
    client.type_in_channel("/topic real clients welcome");
    tcp.skip_until(&format!(
        "* {nick} set the topic of {CHANNEL}: real clients welcome"
    ));
    client.channel_shows(&["real clients welcome"]);
    browser.wait_for_line("real clients welcome");

    // /whois of the line client.
    let shown = client.whois("term");
    assert!(
        shown.contains("term") && has_line(&shown, &["#lobby", CHANNEL]),
        "{shown}"
    );

    // A clean quit: the others see it leave, with its message.
    client.quit("bye from a real client");
    tcp.skip_until(&format!("* {nick} left {CHANNEL} (bye from a real client)"));
    browser.wait_for_line(&format!("{nick} left {CHANNEL} (bye from a real client)"));
}

#[test]
fn irssi_chats_with_a_line_client_and_a_page() {
    let (Some(irssi), Some(_)) = (
        tool("irssi", "the irssi test"),
        tool("tmux", "the irssi test"),
    ) else {
        return;
    };
    chat_with(|addr| {
        let client = Irssi::start(&irssi, addr, "irsi");
        Box::new(IrssiClient(client, "irsi".into()))
    });
}

/// WeeChat logs in with SASL `PLAIN` to an account a line client
/// registered: it shows the success, and the chat sees it logged in.
#[test]
fn weechat_logs_in_with_sasl() {
    let Some(weechat) = tool("weechat-headless", "the WeeChat SASL test") else {
        return;
    };
    if !weechat_fifo_plugin("the WeeChat SASL test") {
        return;
    }
    let server = server();
    let mut owner = Client::named(server.addr(), "dana");
    owner.send(":register correct horse battery");
    owner.expect("* registered dana");
    owner.send(":quit");
    owner.read_to_close();
    let irc_addr = server.irc_addr().expect("the IRC address is on");
    let client = Weechat::start_with(
        &weechat,
        irc_addr,
        "dana",
        Some(("dana", "correct horse battery")),
    );
    client.wait_text("irc.server.test", "SASL authentication successful");
    let mut other = Client::connect(server.addr());
    other.send(":whois dana");
    let whois = other.sync();
    assert!(
        whois.iter().any(|line| line.contains("account dana")),
        "{whois:?}"
    );
    client.quit("bye");
}

#[test]
fn weechat_chats_with_a_line_client_and_a_page() {
    let Some(weechat) = tool("weechat-headless", "the WeeChat test") else {
        return;
    };
    if !weechat_fifo_plugin("the WeeChat test") {
        return;
    }
    chat_with(|addr| {
        let client = Weechat::start(&weechat, addr, "wchat");
        Box::new(WeechatClient(client, "wchat".into()))
    });
}
