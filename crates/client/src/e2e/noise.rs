//! Noise `XX` with `25519`, `AESGCM` and `SHA256`
//! (`Noise_XX_25519_AESGCM_SHA256`, revision 34 of the Noise specification),
//! written over RustCrypto's primitives: `x25519-dalek`, `aes-gcm`, `sha2`,
//! `hkdf`. Only what `XX` needs: no PSK, no other pattern.
//!
//! ```text
//! XX:
//!   -> e
//!   <- e, ee, s, es
//!   -> s, se
//! ```
//!
//! The page does the same steps in `web/e2e.js` over WebCrypto; both are
//! checked against the vectors in `vectors.json` and this one against
//! `snow` (the tests at the bottom).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// The protocol name, hashed into the first handshake hash.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_25519_AESGCM_SHA256";
/// Bytes of a key (X25519 public or private, AES-256 key, hash).
pub const KEY_LEN: usize = 32;
/// Bytes of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The largest Noise message (the specification's limit).
pub const MAX_MESSAGE: usize = 65535;

/// Why a Noise operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseError {
    /// The tag did not verify: the message was changed, replayed, reordered
    /// or made with other keys.
    Decrypt,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order
    /// point (refused, as WebCrypto refuses it).
    WeakKey,
    /// A message of the wrong size for its place in the handshake.
    BadLength,
    /// A step out of the pattern's order.
    OutOfOrder,
    /// The 2^64 - 1 nonces of a key are used up.
    NoncesExhausted,
}

impl std::fmt::Display for NoiseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoiseError::Decrypt => "decryption failed (changed, replayed or out of order)",
            NoiseError::WeakKey => "the peer sent a weak key",
            NoiseError::BadLength => "a handshake message of the wrong size",
            NoiseError::OutOfOrder => "a handshake step out of order",
            NoiseError::NoncesExhausted => "the session's nonces are used up",
        })
    }
}

impl std::error::Error for NoiseError {}

/// A key pair: the private half and its public key.
#[derive(Clone)]
pub struct KeyPair {
    secret: StaticSecret,
    /// The public key, 32 bytes.
    pub public: [u8; KEY_LEN],
}

impl KeyPair {
    /// The key pair of a 32-byte private key.
    pub fn from_secret(secret: [u8; KEY_LEN]) -> KeyPair {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        KeyPair { secret, public }
    }

    /// A fresh random key pair (the operating system's random numbers).
    pub fn generate() -> KeyPair {
        KeyPair::from_secret(random_bytes())
    }

    /// The private key's bytes (for the key file).
    pub fn secret_bytes(&self) -> [u8; KEY_LEN] {
        self.secret.to_bytes()
    }

    /// X25519 with the peer's public key; an all-zero result is refused.
    pub fn dh(&self, public: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], NoiseError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*public));
        if !shared.was_contributory() {
            return Err(NoiseError::WeakKey);
        }
        Ok(shared.to_bytes())
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair {{ public: {:02x?}, .. }}", self.public)
    }
}

/// 32 bytes from the operating system's random number generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system's random numbers");
    bytes
}

/// SHA-256.
pub fn hash(data: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut hasher = Sha256::new();
    for part in data {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Noise's `HKDF(ck, ikm)` with two outputs: RFC 5869 HKDF-SHA256 with the
/// chaining key as salt and empty info, 64 bytes (the page asks WebCrypto's
/// HKDF for exactly this).
pub fn hkdf2(ck: &[u8; KEY_LEN], ikm: &[u8]) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let mut out = [0u8; 2 * KEY_LEN];
    Hkdf::<Sha256>::new(Some(ck), ikm)
        .expand(&[], &mut out)
        .expect("64 bytes is a valid HKDF-SHA256 length");
    let mut first = [0; KEY_LEN];
    let mut second = [0; KEY_LEN];
    first.copy_from_slice(&out[..KEY_LEN]);
    second.copy_from_slice(&out[KEY_LEN..]);
    (first, second)
}

/// AES-256-GCM with Noise's nonce: 4 zero bytes, then the counter big-endian.
pub fn aes_encrypt(key: &[u8; KEY_LEN], nonce: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    cipher
        .encrypt(
            &noise_nonce(nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .expect("AES-GCM encrypts any message below 64 GiB")
}

/// The inverse of [`aes_encrypt`]; a wrong tag is [`NoiseError::Decrypt`].
pub fn aes_decrypt(
    key: &[u8; KEY_LEN],
    nonce: u64,
    ad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, NoiseError> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    cipher
        .decrypt(
            &noise_nonce(nonce),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .map_err(|_| NoiseError::Decrypt)
}

fn noise_nonce(n: u64) -> aes_gcm::aead::Nonce<Aes256Gcm> {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    aes_gcm::aead::Nonce::<Aes256Gcm>::from(bytes)
}

/// Noise's `CipherState`: a key (or none yet) and a nonce counter.
#[derive(Clone, Debug)]
pub struct CipherState {
    key: Option<[u8; KEY_LEN]>,
    nonce: u64,
}

impl CipherState {
    fn empty() -> CipherState {
        CipherState {
            key: None,
            nonce: 0,
        }
    }

    /// A cipher state with a key and nonce 0.
    pub fn with_key(key: [u8; KEY_LEN]) -> CipherState {
        CipherState {
            key: Some(key),
            nonce: 0,
        }
    }

    /// The next nonce this state will use.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The current key (tests and vectors).
    pub fn key(&self) -> Option<[u8; KEY_LEN]> {
        self.key
    }

    /// Encrypts with the next nonce (plaintext returned as is before a key).
    pub fn encrypt(&mut self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let Some(key) = self.key else {
            return Ok(plaintext.to_vec());
        };
        if self.nonce == u64::MAX {
            return Err(NoiseError::NoncesExhausted);
        }
        let out = aes_encrypt(&key, self.nonce, ad, plaintext);
        self.nonce += 1;
        Ok(out)
    }

    /// Decrypts with the next nonce; on failure nothing changes.
    pub fn decrypt(&mut self, ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let Some(key) = self.key else {
            return Ok(ciphertext.to_vec());
        };
        if self.nonce == u64::MAX {
            return Err(NoiseError::NoncesExhausted);
        }
        let out = aes_decrypt(&key, self.nonce, ad, ciphertext)?;
        self.nonce += 1;
        Ok(out)
    }

    /// Noise's `Rekey()`: the key becomes the first 32 bytes of encrypting
    /// 32 zero bytes with nonce 2^64 - 1; the nonce counter is kept.
    pub fn rekey(&mut self) {
        if let Some(key) = self.key {
            self.key = Some(rekeyed(&key));
        }
    }

    /// Moves to nonce `n` (later than the current one), rekeying once per
    /// nonce skipped, as the sender rekeyed once per message it sent.
    pub fn skip_to(&mut self, n: u64) {
        while self.nonce < n {
            self.rekey();
            self.nonce += 1;
        }
    }
}

/// `REKEY(k)` of the Noise specification.
pub fn rekeyed(key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let out = aes_encrypt(key, u64::MAX, &[], &[0; KEY_LEN]);
    let mut next = [0; KEY_LEN];
    next.copy_from_slice(&out[..KEY_LEN]);
    next
}

/// Noise's `SymmetricState`.
#[derive(Clone, Debug)]
struct SymmetricState {
    ck: [u8; KEY_LEN],
    h: [u8; KEY_LEN],
    cipher: CipherState,
}

impl SymmetricState {
    fn new(prologue: &[u8]) -> SymmetricState {
        // The name is 28 bytes: padded with zeros to the hash length.
        let mut h = [0; KEY_LEN];
        h[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        let mut state = SymmetricState {
            ck: h,
            h,
            cipher: CipherState::empty(),
        };
        state.mix_hash(prologue);
        state
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = CipherState::with_key(k);
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = hash(&[&self.h, data]);
    }

    fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let out = self.cipher.encrypt(&self.h, plaintext)?;
        self.mix_hash(&out);
        Ok(out)
    }

    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let out = self.cipher.decrypt(&self.h, ciphertext)?;
        self.mix_hash(ciphertext);
        Ok(out)
    }

    fn split(&self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        (CipherState::with_key(k1), CipherState::with_key(k2))
    }
}

/// The result of a finished handshake: a cipher state each way, the
/// handshake hash and the peer's static key.
#[derive(Clone, Debug)]
pub struct Transport {
    /// Encrypts what this side sends.
    pub send: CipherState,
    /// Decrypts what this side receives.
    pub recv: CipherState,
    /// The handshake hash (the same on both sides).
    pub handshake_hash: [u8; KEY_LEN],
    /// The peer's static public key, authenticated by the handshake.
    pub remote_static: [u8; KEY_LEN],
}

/// One side of an `XX` handshake. The initiator writes messages 1 and 3
/// and reads 2; the responder reads 1 and 3 and writes 2.
#[derive(Clone, Debug)]
pub struct Handshake {
    initiator: bool,
    step: u8,
    sym: SymmetricState,
    s: KeyPair,
    e: KeyPair,
    re: Option<[u8; KEY_LEN]>,
    rs: Option<[u8; KEY_LEN]>,
}

impl Handshake {
    /// A handshake with a fresh random ephemeral key.
    pub fn new(initiator: bool, prologue: &[u8], s: KeyPair) -> Handshake {
        Handshake::with_ephemeral(initiator, prologue, s, KeyPair::generate())
    }

    /// A handshake with a given ephemeral key (test vectors only: an
    /// ephemeral key must never be reused).
    pub fn with_ephemeral(initiator: bool, prologue: &[u8], s: KeyPair, e: KeyPair) -> Handshake {
        Handshake {
            initiator,
            step: 0,
            sym: SymmetricState::new(prologue),
            s,
            e,
            re: None,
            rs: None,
        }
    }

    /// Whether this side started the handshake.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Whether the three messages have been exchanged.
    pub fn is_finished(&self) -> bool {
        self.step == 3
    }

    /// Whether the next step is this side's to write.
    pub fn is_my_turn(&self) -> bool {
        self.step < 3 && self.step.is_multiple_of(2) == self.initiator
    }

    /// The peer's static key, once its message carrying it is read.
    pub fn remote_static(&self) -> Option<[u8; KEY_LEN]> {
        self.rs
    }

    /// Writes the next handshake message, carrying `payload`.
    pub fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if !self.is_my_turn() {
            return Err(NoiseError::OutOfOrder);
        }
        let mut out = Vec::new();
        match self.step {
            0 => {
                out.extend_from_slice(&self.e.public);
                self.sym.mix_hash(&self.e.public);
            }
            1 => {
                let re = self.re.ok_or(NoiseError::OutOfOrder)?;
                out.extend_from_slice(&self.e.public);
                self.sym.mix_hash(&self.e.public);
                self.sym.mix_key(&self.e.dh(&re)?);
                let s = self.sym.encrypt_and_hash(&self.s.public)?;
                out.extend_from_slice(&s);
                self.sym.mix_key(&self.s.dh(&re)?);
            }
            _ => {
                let re = self.re.ok_or(NoiseError::OutOfOrder)?;
                let s = self.sym.encrypt_and_hash(&self.s.public)?;
                out.extend_from_slice(&s);
                self.sym.mix_key(&self.s.dh(&re)?);
            }
        }
        out.extend_from_slice(&self.sym.encrypt_and_hash(payload)?);
        self.step += 1;
        Ok(out)
    }

    /// Reads the peer's next handshake message and returns its payload.
    /// On failure the handshake is unusable (start a new one).
    pub fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if self.step >= 3 || self.is_my_turn() {
            return Err(NoiseError::OutOfOrder);
        }
        if message.len() > MAX_MESSAGE {
            return Err(NoiseError::BadLength);
        }
        let mut rest = message;
        let mut take = |n: usize| -> Result<Vec<u8>, NoiseError> {
            if rest.len() < n {
                return Err(NoiseError::BadLength);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head.to_vec())
        };
        match self.step {
            0 => {
                let re: [u8; KEY_LEN] = take(KEY_LEN)?.try_into().expect("32 bytes");
                self.sym.mix_hash(&re);
                self.re = Some(re);
            }
            1 => {
                let re: [u8; KEY_LEN] = take(KEY_LEN)?.try_into().expect("32 bytes");
                self.sym.mix_hash(&re);
                self.re = Some(re);
                self.sym.mix_key(&self.e.dh(&re)?);
                let rs = self.sym.decrypt_and_hash(&take(KEY_LEN + TAG_LEN)?)?;
                let rs: [u8; KEY_LEN] = rs.try_into().map_err(|_| NoiseError::BadLength)?;
                self.sym.mix_key(&self.e.dh(&rs)?);
                self.rs = Some(rs);
            }
            _ => {
                let rs = self.sym.decrypt_and_hash(&take(KEY_LEN + TAG_LEN)?)?;
                let rs: [u8; KEY_LEN] = rs.try_into().map_err(|_| NoiseError::BadLength)?;
                self.sym.mix_key(&self.e.dh(&rs)?);
                self.rs = Some(rs);
            }
        }
        let payload = self.sym.decrypt_and_hash(rest)?;
        self.step += 1;
        Ok(payload)
    }

    /// The transport cipher states, once the handshake is finished.
    pub fn finish(&self) -> Result<Transport, NoiseError> {
        if !self.is_finished() {
            return Err(NoiseError::OutOfOrder);
        }
        let (first, second) = self.sym.split();
        let (send, recv) = if self.initiator {
            (first, second)
        } else {
            (second, first)
        };
        Ok(Transport {
            send,
            recv,
            handshake_hash: self.sym.h,
            remote_static: self.rs.ok_or(NoiseError::OutOfOrder)?,
        })
    }
}
