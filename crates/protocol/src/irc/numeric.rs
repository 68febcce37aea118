//! The numeric replies the server sends, with the parameters and the texts
//! the Modern IRC documents give (`modern.ircdocs.horse`, "Numerics").
//!
//! Every numeric is `:SERVER CODE CLIENT PARAMS… [:TEXT]`, where CLIENT is
//! the recipient's nick (`*` before it has one). [`write`] renders one
//! into the caller's buffer. For a numeric whose last parameter is a fixed
//! text, [`Numeric::text`] is that text exactly as the documents spell it
//! (`Erroneus nickname` included: conformance suites compare them); for one
//! whose last parameter is data (a topic, a MOTD line, a nick list), it is
//! `None` and the caller passes the data as the last parameter.

use super::message::{Message, Params};

macro_rules! numerics {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $text:expr; )*) => {
        /// A numeric reply the server sends.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Numeric {
            $( $(#[$doc])* $variant, )*
        }

        impl Numeric {
            /// Every numeric, in the table's order.
            pub const ALL: &'static [Numeric] = &[$(Numeric::$variant),*];

            /// The three-digit code, as sent (`"001"`).
            pub const fn code(self) -> &'static str {
                match self { $(Numeric::$variant => $code,)* }
            }

            /// The documents' name (`RPL_WELCOME`).
            pub const fn name(self) -> &'static str {
                match self { $(Numeric::$variant => $name,)* }
            }

            /// The fixed text of the last parameter, as the documents give
            /// it; `None` when the last parameter is data or a template the
            /// caller fills (see each variant).
            pub const fn text(self) -> Option<&'static str> {
                match self { $(Numeric::$variant => $text,)* }
            }
        }
    };
}

numerics! {
    /// `<client> :Welcome to the <networkname> Network, <nick>`: see [`welcome_text`].
    Welcome = "001", "RPL_WELCOME", None;
    /// `<client> :Your host is <servername>, running version <version>`.
    YourHost = "002", "RPL_YOURHOST", None;
    /// `<client> :This server was created <datetime>`.
    Created = "003", "RPL_CREATED", None;
    /// `<client> <servername> <version> <user modes> <channel modes> [<modes with a parameter>]`.
    MyInfo = "004", "RPL_MYINFO", None;
    /// `<client> <1-13 tokens> :are supported by this server`.
    ISupport = "005", "RPL_ISUPPORT", Some("are supported by this server");
    /// `<client> <user modes>`.
    UModeIs = "221", "RPL_UMODEIS", None;
    /// `<client> :There are <u> users and <i> invisible on <s> servers`.
    LuserClient = "251", "RPL_LUSERCLIENT", None;
    /// `<client> <ops> :operator(s) online`.
    LuserOp = "252", "RPL_LUSEROP", Some("operator(s) online");
    /// `<client> <connections> :unknown connection(s)`.
    LuserUnknown = "253", "RPL_LUSERUNKNOWN", Some("unknown connection(s)");
    /// `<client> <channels> :channels formed`.
    LuserChannels = "254", "RPL_LUSERCHANNELS", Some("channels formed");
    /// `<client> :I have <c> clients and <s> servers`.
    LuserMe = "255", "RPL_LUSERME", None;
    /// `<client> <nick> :<message>`.
    Away = "301", "RPL_AWAY", None;
    /// `<client> :[<reply>{ <reply>}]`.
    UserHost = "302", "RPL_USERHOST", None;
    /// `<client> :[<nickname>{ <nickname>}]`.
    IsOn = "303", "RPL_ISON", None;
    /// `<client> :You are no longer marked as being away`.
    UnAway = "305", "RPL_UNAWAY", Some("You are no longer marked as being away");
    /// `<client> :You have been marked as being away`.
    NowAway = "306", "RPL_NOWAWAY", Some("You have been marked as being away");
    /// `<client> <nick> <username> <host> * :<realname>`.
    WhoisUser = "311", "RPL_WHOISUSER", None;
    /// `<client> <nick> <server> :<server info>`.
    WhoisServer = "312", "RPL_WHOISSERVER", None;
    /// `<client> <mask> :End of WHO list`.
    EndOfWho = "315", "RPL_ENDOFWHO", Some("End of WHO list");
    /// `<client> <nick> :End of /WHOIS list`.
    EndOfWhois = "318", "RPL_ENDOFWHOIS", Some("End of /WHOIS list");
    /// `<client> <nick> :[prefix]<channel>{ [prefix]<channel>}`.
    WhoisChannels = "319", "RPL_WHOISCHANNELS", None;
    /// `<client> <channel> <client count> :<topic>`.
    List = "322", "RPL_LIST", None;
    /// `<client> :End of /LIST`.
    ListEnd = "323", "RPL_LISTEND", Some("End of /LIST");
    /// `<client> <channel> <modestring> <mode arguments>...`.
    ChannelModeIs = "324", "RPL_CHANNELMODEIS", None;
    /// `<client> <channel> <creationtime>`.
    CreationTime = "329", "RPL_CREATIONTIME", None;
    /// `<client> <channel> :No topic is set`.
    NoTopic = "331", "RPL_NOTOPIC", Some("No topic is set");
    /// `<client> <channel> :<topic>`.
    Topic = "332", "RPL_TOPIC", None;
    /// `<client> <channel> <nick> <setat>`.
    TopicWhoTime = "333", "RPL_TOPICWHOTIME", None;
    /// `<client> <channel> <username> <host> <server> <nick> <flags> :<hopcount> <realname>`.
    WhoReply = "352", "RPL_WHOREPLY", None;
    /// `<client> <symbol> <channel> :[prefix]<nick>{ [prefix]<nick>}`.
    NamReply = "353", "RPL_NAMREPLY", None;
    /// `<client> <channel> :End of /NAMES list`.
    EndOfNames = "366", "RPL_ENDOFNAMES", Some("End of /NAMES list");
    /// `<client> <channel> <mask> [<who> <set-ts>]`.
    BanList = "367", "RPL_BANLIST", None;
    /// `<client> <channel> :End of channel ban list`.
    EndOfBanList = "368", "RPL_ENDOFBANLIST", Some("End of channel ban list");
    /// `<client> :<line of the motd>`.
    Motd = "372", "RPL_MOTD", None;
    /// `<client> :- <server> Message of the day - `.
    MotdStart = "375", "RPL_MOTDSTART", None;
    /// `<client> :End of /MOTD command.`.
    EndOfMotd = "376", "RPL_ENDOFMOTD", Some("End of /MOTD command.");
    /// `<client> :You are now an IRC operator`.
    YoureOper = "381", "RPL_YOUREOPER", Some("You are now an IRC operator");
    /// `<client> <nickname> :No such nick/channel`.
    NoSuchNick = "401", "ERR_NOSUCHNICK", Some("No such nick/channel");
    /// `<client> <channel> :No such channel`.
    NoSuchChannel = "403", "ERR_NOSUCHCHANNEL", Some("No such channel");
    /// `<client> <channel> :Cannot send to channel`.
    CannotSendToChan = "404", "ERR_CANNOTSENDTOCHAN", Some("Cannot send to channel");
    /// `<client> :No origin specified`.
    NoOrigin = "409", "ERR_NOORIGIN", Some("No origin specified");
    /// `<client> <subcommand> :Invalid CAP command` (IRCv3 capability negotiation).
    InvalidCapCmd = "410", "ERR_INVALIDCAPCMD", Some("Invalid CAP command");
    /// `<client> :No recipient given (<command>)`: see [`no_recipient_text`].
    NoRecipient = "411", "ERR_NORECIPIENT", None;
    /// `<client> :No text to send`.
    NoTextToSend = "412", "ERR_NOTEXTTOSEND", Some("No text to send");
    /// `<client> :Input line was too long`.
    InputTooLong = "417", "ERR_INPUTTOOLONG", Some("Input line was too long");
    /// `<client> <command> :Unknown command`.
    UnknownCommand = "421", "ERR_UNKNOWNCOMMAND", Some("Unknown command");
    /// `<client> :MOTD File is missing`.
    NoMotd = "422", "ERR_NOMOTD", Some("MOTD File is missing");
    /// `<client> :No nickname given`.
    NoNicknameGiven = "431", "ERR_NONICKNAMEGIVEN", Some("No nickname given");
    /// `<client> <nick> :Erroneus nickname` (the documents' spelling).
    ErroneusNickname = "432", "ERR_ERRONEUSNICKNAME", Some("Erroneus nickname");
    /// `<client> <nick> :Nickname is already in use`.
    NicknameInUse = "433", "ERR_NICKNAMEINUSE", Some("Nickname is already in use");
    /// `<client> <nick> <channel> :They aren't on that channel`.
    UserNotInChannel = "441", "ERR_USERNOTINCHANNEL", Some("They aren't on that channel");
    /// `<client> <channel> :You're not on that channel`.
    NotOnChannel = "442", "ERR_NOTONCHANNEL", Some("You're not on that channel");
    /// `<client> :You have not registered`.
    NotRegistered = "451", "ERR_NOTREGISTERED", Some("You have not registered");
    /// `<client> <command> :Not enough parameters`.
    NeedMoreParams = "461", "ERR_NEEDMOREPARAMS", Some("Not enough parameters");
    /// `<client> :You may not reregister`.
    AlreadyRegistered = "462", "ERR_ALREADYREGISTERED", Some("You may not reregister");
    /// `<client> :Password incorrect`.
    PasswdMismatch = "464", "ERR_PASSWDMISMATCH", Some("Password incorrect");
    /// `<client> <modechar> :is unknown mode char to me`.
    UnknownMode = "472", "ERR_UNKNOWNMODE", Some("is unknown mode char to me");
    /// `<client> <channel> :Cannot join channel (+b)`.
    BannedFromChan = "474", "ERR_BANNEDFROMCHAN", Some("Cannot join channel (+b)");
    /// `<client> <channel> :You're not channel operator`.
    ChanOPrivsNeeded = "482", "ERR_CHANOPRIVSNEEDED", Some("You're not channel operator");
    /// `<client> :No O-lines for your host`.
    NoOperHost = "491", "ERR_NOOPERHOST", Some("No O-lines for your host");
    /// `<client> :Unknown MODE flag`.
    UModeUnknownFlag = "501", "ERR_UMODEUNKNOWNFLAG", Some("Unknown MODE flag");
    /// `<client> :Cant change mode for other users`.
    UsersDontMatch = "502", "ERR_USERSDONTMATCH", Some("Cant change mode for other users");
    /// `<client> <nick>!<user>@<host> <account> :You are now logged in as <username>`.
    LoggedIn = "900", "RPL_LOGGEDIN", None;
    /// `<client> :SASL authentication successful`.
    SaslSuccess = "903", "RPL_SASLSUCCESS", Some("SASL authentication successful");
    /// `<client> :SASL authentication failed`.
    SaslFail = "904", "ERR_SASLFAIL", Some("SASL authentication failed");
    /// `<client> :SASL message too long`.
    SaslTooLong = "905", "ERR_SASLTOOLONG", Some("SASL message too long");
    /// `<client> :SASL authentication aborted`.
    SaslAborted = "906", "ERR_SASLABORTED", Some("SASL authentication aborted");
    /// `<client> :You have already authenticated using SASL`.
    SaslAlready = "907", "ERR_SASLALREADY", Some("You have already authenticated using SASL");
    /// `<client> <mechanisms> :are available SASL mechanisms`.
    SaslMechs = "908", "RPL_SASLMECHS", Some("are available SASL mechanisms");
}

/// The text of `001`: `Welcome to the NETWORK Network, NICK`.
pub fn welcome_text(network: &str, nick: &str) -> String {
    format!("Welcome to the {network} Network, {nick}")
}

/// The text of `002`: `Your host is SERVER, running version VERSION`.
pub fn your_host_text(server: &str, version: &str) -> String {
    format!("Your host is {server}, running version {version}")
}

/// The text of `003`: `This server was created DATETIME`.
pub fn created_text(datetime: &str) -> String {
    format!("This server was created {datetime}")
}

/// The text of `251`: `There are U users and I invisible on S servers`.
pub fn luser_client_text(users: usize, invisible: usize, servers: usize) -> String {
    format!("There are {users} users and {invisible} invisible on {servers} servers")
}

/// The text of `255`: `I have C clients and S servers`.
pub fn luser_me_text(clients: usize, servers: usize) -> String {
    format!("I have {clients} clients and {servers} servers")
}

/// The text of `375`: `- SERVER Message of the day - `.
pub fn motd_start_text(server: &str) -> String {
    format!("- {server} Message of the day - ")
}

/// The text of `411`: `No recipient given (COMMAND)`.
pub fn no_recipient_text(command: &str) -> String {
    format!("No recipient given ({command})")
}

/// Appends `:SERVER CODE CLIENT PARAMS… :TEXT` and CR LF, where TEXT is
/// `text` when given, else the numeric's fixed [`Numeric::text`], else
/// nothing (the last of `params` is then the last parameter). At most 13
/// `params` (15 with the client and the text).
pub fn write(
    out: &mut Vec<u8>,
    server: &str,
    numeric: Numeric,
    client: &str,
    params: &[&str],
    text: Option<&str>,
) {
    let mut all = Params::default();
    let mut fits = all.push(client).is_some();
    for &param in params {
        fits &= all.push(param).is_some();
    }
    let text = text.or(numeric.text());
    if let Some(text) = text {
        fits &= all.push(text).is_some();
    }
    debug_assert!(fits, "{numeric:?} with {} parameters", params.len());
    Message {
        tags: None,
        source: Some(server),
        command: numeric.code(),
        params: all,
        trailing: text.is_some(),
    }
    .write(out);
}
