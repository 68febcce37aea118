//! Settings written as text in the file: addresses (host names resolved
//! like the flags), the history writer's priority, address ranges.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use std::fmt::Display;
use std::str::FromStr;

/// `Option<T>` as a string parsed with `T::from_str`.
pub mod parsed {
    use super::*;

    pub fn serialize<S: Serializer, T: Display>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.collect_str(value),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let text = String::deserialize(d)?;
        text.parse().map(Some).map_err(D::Error::custom)
    }
}

/// A listening address, `HOST:PORT` resolved as the flags do it.
pub mod addr {
    use super::*;
    use std::net::SocketAddr;

    pub use super::parsed::serialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        crate::config::parse_addr(&text)
            .map(Some)
            .map_err(D::Error::custom)
    }
}

/// A list of strings each parsed with `T::from_str`.
pub mod list {
    use super::*;

    pub fn serialize<S: Serializer, T: Display>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| text.parse().map_err(D::Error::custom))
            .collect()
    }
}
