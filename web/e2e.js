// loopchat's end-to-end encryption in the page: the same protocol as the
// terminal client's crates/client/src/e2e/ (docs/e2e.md), over WebCrypto
// only: X25519, HKDF-SHA256 (and HMAC through it), AES-256-GCM, SHA-256.
//
// Noise_XX_25519_AESGCM_SHA256; the prologue binds "loopchat-e2e-v1", the
// server's name and both account names; transport texts padded to 64-byte
// steps, rekeyed after each message; peers' keys pinned on first use; the
// device key a non-extractable CryptoKey in IndexedDB. Everything is
// exposed as window.LoopchatE2E; the browser test runs the shared vectors
// through it.
"use strict";

window.LoopchatE2E = (() => {
  const subtle = () => crypto.subtle;
  const KEY_LEN = 32;
  const TAG_LEN = 16;
  const PAD_STEP = 64;
  const MAX_PADDED = 44 * PAD_STEP;
  const MAX_TEXT = MAX_PADDED - 2;
  const MAX_PAYLOAD = 4000;
  const MAX_SKIP = 1024n;
  const MAX_HELD = 256;
  const MAX_NONCE = (1n << 64n) - 1n;
  const PROTOCOL_NAME = "Noise_XX_25519_AESGCM_SHA256";
  const PROLOGUE_LABEL = "loopchat-e2e-v1";
  const SAFETY_LABEL = "loopchat safety number v1";
  // PKCS #8 wrapping of a raw X25519 private key (RFC 8410).
  const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e,
    0x04, 0x22, 0x04, 0x20];

  class E2EError extends Error {
    constructor(kind, message) {
      super(message || kind);
      this.kind = kind; // "decrypt", "weak-key", "bad-length", "out-of-order"
    }
  }

  // Bytes.
  const utf8 = new TextEncoder();
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => {
    if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new E2EError("malformed", "not hex");
    return Uint8Array.from(text.match(/../g) || [], (b) => parseInt(b, 16));
  };
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const b64url = (bytes) => {
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
      for (let j = 0; j < chars; j++) out += B64[(n >> (18 - 6 * j)) & 63];
    }
    return out;
  };
  // Strict base64url without padding; null for anything else (including
  // non-zero trailing bits, as Rust's base64 refuses them).
  const unb64url = (text) => {
    if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
    const out = [];
    let bits = 0;
    let value = 0;
    for (const c of text) {
      value = (value << 6) | B64.indexOf(c);
      bits += 6;
      if (bits >= 8) { bits -= 8; out.push((value >> bits) & 255); }
    }
    if (value & ((1 << bits) - 1)) return null;
    return Uint8Array.from(out);
  };
  const encodeKey = (key) => b64url(key);
  const decodeKey = (text) => {
    const bytes = text.length === 43 ? unb64url(text) : null;
    return bytes && bytes.length === KEY_LEN ? bytes : null;
  };

  // Primitives.
  const hash = async (...parts) =>
    new Uint8Array(await subtle().digest("SHA-256", concat(...parts)));
  const hkdf = async (salt, ikm, info, length) => {
    const key = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const bits = await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
    return new Uint8Array(bits);
  };
  // Noise's HKDF(ck, ikm) with two outputs: RFC 5869 with ck as salt.
  const hkdf2 = async (ck, ikm) => {
    const out = await hkdf(ck, ikm, new Uint8Array(0), 64);
    return [out.slice(0, 32), out.slice(32)];
  };
  const aesKey = (key, usage) => subtle().importKey("raw", key, "AES-GCM", false, [usage]);
  const aesGcmEncrypt = async (key, iv, ad, plaintext) => new Uint8Array(await subtle().encrypt(
    { name: "AES-GCM", iv, additionalData: ad, tagLength: 128 }, await aesKey(key, "encrypt"), plaintext));
  const aesGcmDecrypt = async (key, iv, ad, ciphertext) => {
    try {
      return new Uint8Array(await subtle().decrypt(
        { name: "AES-GCM", iv, additionalData: ad, tagLength: 128 }, await aesKey(key, "decrypt"), ciphertext));
    } catch (_) {
      throw new E2EError("decrypt", "decryption failed (changed, replayed or out of order)");
    }
  };
  const noiseNonce = (n) => {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setBigUint64(4, n, false);
    return iv;
  };
  const rekeyed = async (key) =>
    (await aesGcmEncrypt(key, noiseNonce(MAX_NONCE), new Uint8Array(0), new Uint8Array(32))).slice(0, 32);

  // X25519. A key pair: { privateKey: CryptoKey, public: Uint8Array(32) }.
  const importPublic = (bytes) => subtle().importKey("raw", bytes, { name: "X25519" }, true, []);
  const dhRaw = async (privateKey, publicBytes) => {
    let bits;
    try {
      bits = new Uint8Array(await subtle().deriveBits(
        { name: "X25519", public: await importPublic(publicBytes) }, privateKey, 256));
    } catch (_) {
      // Chromium refuses an all-zero result (a low-order point).
      throw new E2EError("weak-key", "the peer sent a weak key");
    }
    if (bits.every((b) => b === 0)) throw new E2EError("weak-key", "the peer sent a weak key");
    return bits;
  };
  const dh = (pair, publicBytes) => dhRaw(pair.privateKey, publicBytes);
  const BASE_POINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0));
  // The key pair of a raw private key (vectors and tests; never extractable).
  const keyPairFromSecret = async (secret) => {
    const privateKey = await subtle().importKey("pkcs8", concat(Uint8Array.from(PKCS8_PREFIX), secret),
      { name: "X25519" }, false, ["deriveBits"]);
    return { privateKey, public: await dhRaw(privateKey, BASE_POINT) };
  };
  const generateKeyPair = async () => {
    const pair = await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return {
      privateKey: pair.privateKey,
      public: new Uint8Array(await subtle().exportKey("raw", pair.publicKey)),
    };
  };
  const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

  // Noise.
  class CipherState {
    constructor(key) { this.key = key || null; this.nonce = 0n; }
    clone() { const c = new CipherState(this.key && this.key.slice()); c.nonce = this.nonce; return c; }
    async encrypt(ad, plaintext) {
      if (!this.key) return plaintext.slice();
      if (this.nonce === MAX_NONCE) throw new E2EError("nonces", "nonces used up");
      const out = await aesGcmEncrypt(this.key, noiseNonce(this.nonce), ad, plaintext);
      this.nonce += 1n;
      return out;
    }
    async decrypt(ad, ciphertext) {
      if (!this.key) return ciphertext.slice();
      if (this.nonce === MAX_NONCE) throw new E2EError("nonces", "nonces used up");
      const out = await aesGcmDecrypt(this.key, noiseNonce(this.nonce), ad, ciphertext);
      this.nonce += 1n;
      return out;
    }
    async rekey() { if (this.key) this.key = await rekeyed(this.key); }
    async skipTo(n) { while (this.nonce < n) { await this.rekey(); this.nonce += 1n; } }
  }

  class Handshake {
    // s, e: key pairs; e made fresh when not given (given: vectors only).
    constructor(initiator, prologue, s, e) {
      this.initiator = initiator;
      this.step = 0;
      this.s = s;
      this.e = e || null;
      this.re = null;
      this.rs = null;
      this.prologue = prologue;
      this.ready = null;
    }
    async init() {
      if (this.ready) return;
      const name = utf8.encode(PROTOCOL_NAME);
      const h = new Uint8Array(32);
      h.set(name);
      this.ck = h.slice();
      this.h = h;
      this.cipher = new CipherState();
      await this.mixHash(this.prologue);
      if (!this.e) this.e = await generateKeyPair();
      this.ready = true;
    }
    async mixHash(data) { this.h = await hash(this.h, data); }
    async mixKey(ikm) { const [ck, k] = await hkdf2(this.ck, ikm); this.ck = ck; this.cipher = new CipherState(k); }
    async encryptAndHash(p) { const c = await this.cipher.encrypt(this.h, p); await this.mixHash(c); return c; }
    async decryptAndHash(c) { const p = await this.cipher.decrypt(this.h, c); await this.mixHash(c); return p; }
    isMyTurn() { return this.step < 3 && (this.step % 2 === 0) === this.initiator; }
    isFinished() { return this.step === 3; }
    async write(payload) {
      await this.init();
      if (!this.isMyTurn()) throw new E2EError("out-of-order");
      const out = [];
      if (this.step === 0) {
        out.push(this.e.public);
        await this.mixHash(this.e.public);
      } else if (this.step === 1) {
        out.push(this.e.public);
        await this.mixHash(this.e.public);
        await this.mixKey(await dh(this.e, this.re));
        out.push(await this.encryptAndHash(this.s.public));
        await this.mixKey(await dh(this.s, this.re));
      } else {
        out.push(await this.encryptAndHash(this.s.public));
        await this.mixKey(await dh(this.s, this.re));
      }
      out.push(await this.encryptAndHash(payload));
      this.step += 1;
      return concat(...out);
    }
    async read(message) {
      await this.init();
      if (this.step >= 3 || this.isMyTurn()) throw new E2EError("out-of-order");
      let rest = message;
      const take = (n) => {
        if (rest.length < n) throw new E2EError("bad-length");
        const head = rest.slice(0, n);
        rest = rest.slice(n);
        return head;
      };
      if (this.step === 0) {
        this.re = take(KEY_LEN);
        await this.mixHash(this.re);
      } else if (this.step === 1) {
        this.re = take(KEY_LEN);
        await this.mixHash(this.re);
        await this.mixKey(await dh(this.e, this.re));
        this.rs = await this.decryptAndHash(take(KEY_LEN + TAG_LEN));
        await this.mixKey(await dh(this.e, this.rs));
      } else {
        this.rs = await this.decryptAndHash(take(KEY_LEN + TAG_LEN));
        await this.mixKey(await dh(this.e, this.rs));
      }
      const payload = await this.decryptAndHash(rest);
      this.step += 1;
      return payload;
    }
    async finish() {
      if (!this.isFinished()) throw new E2EError("out-of-order");
      const [k1, k2] = await hkdf2(this.ck, new Uint8Array(0));
      const [first, second] = [new CipherState(k1), new CipherState(k2)];
      return {
        send: this.initiator ? first : second,
        recv: this.initiator ? second : first,
        handshakeHash: this.h,
        remoteStatic: this.rs,
      };
    }
  }

  // The wire: see crates/client/src/e2e/wire.rs.
  const KINDS = { a: "hello", b: "reply", c: "finish", m: "message" };
  const encodePayload = ({ kind, sid, n, data }) => {
    const letter = Object.keys(KINDS).find((k) => KINDS[k] === kind);
    const number = kind === "message" ? `${n}.` : "";
    return `v1.${letter}.${hex(sid)}.${number}${b64url(data)}`;
  };
  const decodePayload = (text) => {
    if (text.length > MAX_PAYLOAD) return null;
    const parts = text.split(".");
    if (parts[0] !== "v1" || !(parts[1] in KINDS)) return null;
    const kind = KINDS[parts[1]];
    if (parts.length !== (kind === "message" ? 5 : 4)) return null;
    if (!/^[0-9a-f]{16}$/.test(parts[2])) return null;
    let n = null;
    if (kind === "message") {
      if (!/^(0|[1-9][0-9]*)$/.test(parts[3])) return null;
      n = BigInt(parts[3]);
      if (n > MAX_NONCE) return null;
    }
    const data = unb64url(parts[parts.length - 1]);
    if (!data) return null;
    return { kind, sid: unhex(parts[2]), n, data };
  };
  const pad = (text) => {
    const body = utf8.encode(text);
    if (body.length > MAX_TEXT) throw new E2EError("too-long", `at most ${MAX_TEXT} bytes`);
    const out = new Uint8Array(Math.ceil((2 + body.length) / PAD_STEP) * PAD_STEP);
    new DataView(out.buffer).setUint16(0, body.length, false);
    out.set(body, 2);
    return out;
  };
  const unpad = (padded) => {
    if (padded.length === 0 || padded.length % PAD_STEP !== 0 || padded.length > MAX_PADDED) return null;
    const len = (padded[0] << 8) | padded[1];
    if (2 + len > padded.length || Math.ceil((2 + len) / PAD_STEP) * PAD_STEP !== padded.length) return null;
    if (padded.subarray(2 + len).some((b) => b !== 0)) return null;
    try { return utf8Strict.decode(padded.subarray(2, 2 + len)); } catch (_) { return null; }
  };
  const prologue = (server, initiator, responder) => concat(...[
    PROLOGUE_LABEL, server, initiator.toLowerCase(), responder.toLowerCase(),
  ].map((part) => {
    const bytes = utf8.encode(part);
    return concat(Uint8Array.of(bytes.length >> 8, bytes.length & 255), bytes);
  }));

  // Safety numbers: see crates/client/src/e2e/safety.rs.
  const half = async (account, key) => {
    const digest = await hash(utf8.encode(SAFETY_LABEL), Uint8Array.of(0),
      utf8.encode(account.toLowerCase()), Uint8Array.of(0), key);
    let out = "";
    for (let i = 0; i < 30; i += 5) {
      let value = 0n;
      for (const b of digest.subarray(i, i + 5)) value = (value << 8n) | BigInt(b);
      out += String(value % 100000n).padStart(5, "0");
    }
    return out;
  };
  const safetyNumber = async (account, key, peer, peerKey) =>
    [await half(account, key), await half(peer, peerKey)].sort().join("");
  const grouped = (number) => number.match(/.{1,5}/g).join(" ");

  // Pins: the peers' accepted keys per server and account; kept in
  // localStorage (public keys: nothing secret).
  class Pins {
    constructor(storageKey) {
      this.storageKey = storageKey || null;
      this.accounts = {};
      if (this.storageKey) {
        try { this.accounts = JSON.parse(localStorage.getItem(this.storageKey)) || {}; } catch (_) { this.accounts = {}; }
      }
    }
    id(server, account) { return `${server} ${account.toLowerCase()}`; }
    // Whether a key was ever accepted for `account` on `server`.
    has(server, account) {
      const pinned = this.accounts[this.id(server, account)];
      return !!pinned && pinned.keys.length > 0;
    }
    check(server, account, key) {
      const pinned = this.accounts[this.id(server, account)];
      if (!pinned || pinned.keys.length === 0) return { status: "first-contact" };
      const text = encodeKey(key);
      if (pinned.keys.includes(text)) return { status: "known", verified: pinned.verified.includes(text) };
      return { status: "changed", accepted: pinned.keys.slice() };
    }
    accept(server, account, key) {
      const id = this.id(server, account);
      const pinned = this.accounts[id] || (this.accounts[id] = { keys: [], verified: [] });
      if (!pinned.keys.includes(encodeKey(key))) pinned.keys.push(encodeKey(key));
      this.save();
    }
    verify(server, account, key) {
      const pinned = this.accounts[this.id(server, account)];
      if (!pinned || !pinned.keys.includes(encodeKey(key))) return false;
      if (!pinned.verified.includes(encodeKey(key))) pinned.verified.push(encodeKey(key));
      this.save();
      return true;
    }
    save() { if (this.storageKey) localStorage.setItem(this.storageKey, JSON.stringify(this.accounts)); }
  }

  // One conversation: the same rules as crates/client/src/e2e/session.rs.
  // Events: {type: "send", payload}, {type: "message", text},
  // {type: "secure", key, firstContact, verified}, {type: "key-changed", key},
  // {type: "lost", count}, {type: "rejected", reason} with reason one of
  // malformed, replayed, tampered, unknown-session, unexpected, handshake-failed.
  class Conversation {
    constructor(server, me, peer, device, pins) {
      Object.assign(this, { server, me, peer, device, pins });
      this.state = { kind: "idle" };
      this.queued = [];
      this.held = [];
      this.unaccepted = null;
      this.chain = Promise.resolve();
    }
    // Runs one operation at a time, in order (each awaits WebCrypto).
    serial(fn) {
      const run = this.chain.then(fn);
      this.chain = run.catch(() => {});
      return run;
    }
    isSecure() { return this.state.kind === "open" && !this.unaccepted; }
    // The 60-digit safety number, once a handshake authenticated the peer.
    async safetyNumber() {
      const key = this.peerKey();
      return key ? safetyNumber(this.me, this.device.public, this.peer, key) : null;
    }
    // The user compared the safety number: mark the peer's key verified.
    verify() {
      const key = this.peerKey();
      return !!key && !this.unaccepted && this.pins.verify(this.server, this.peer, key);
    }
    peerKey() { return this.state.kind === "open" ? this.state.transport.remoteStatic : null; }
    send(text) { return this.serial(() => this.sendNow(text)); }
    receive(payload) { return this.serial(() => this.receiveNow(payload)); }
    acceptKey() { return this.serial(() => this.acceptNow()); }
    start() { return this.serial(() => this.startNow()); }

    async sendNow(text) {
      pad(text);
      if (this.unaccepted) throw new E2EError("key-changed", `${this.peer}'s key changed: accept it first`);
      if (this.state.kind === "open") return [await this.seal(text)];
      if (this.queued.length >= MAX_HELD) throw new E2EError("busy");
      this.queued.push(text);
      return this.state.kind === "idle" ? [await this.startNow()] : [];
    }
    async startNow() {
      const sid = randomBytes(8);
      const hs = new Handshake(true, prologue(this.server, this.me, this.peer), this.device);
      const data = await hs.write(new Uint8Array(0));
      this.state = { kind: "handshaking", sid, hs };
      return { type: "send", payload: encodePayload({ kind: "hello", sid, data }) };
    }
    async seal(text) {
      const t = this.state.transport;
      const n = t.send.nonce;
      const data = await t.send.encrypt(new Uint8Array(0), pad(text));
      await t.send.rekey();
      return { type: "send", payload: encodePayload({ kind: "message", sid: this.state.sid, n, data }) };
    }
    async receiveNow(text) {
      const p = decodePayload(text);
      if (!p) return [{ type: "rejected", reason: "malformed" }];
      if (p.kind === "hello") return this.onHello(p);
      if (p.kind === "reply" || p.kind === "finish") return this.onHandshake(p);
      return this.onMessage(p);
    }
    async onHello(p) {
      const st = this.state;
      if (st.kind === "handshaking" && st.hs.initiator && this.me.toLowerCase() < this.peer.toLowerCase()) return [];
      const hs = new Handshake(false, prologue(this.server, this.peer, this.me), this.device);
      try {
        await hs.read(p.data);
        const data = await hs.write(new Uint8Array(0));
        this.state = { kind: "handshaking", sid: p.sid, hs };
        return [{ type: "send", payload: encodePayload({ kind: "reply", sid: p.sid, data }) }];
      } catch (_) {
        return [{ type: "rejected", reason: "handshake-failed" }];
      }
    }
    async onHandshake(p) {
      const st = this.state;
      const initiator = p.kind === "reply";
      if (st.kind !== "handshaking" || !equal(st.sid, p.sid) || st.hs.initiator !== initiator || st.hs.isMyTurn()) {
        return [{ type: "rejected", reason: "unexpected" }];
      }
      try {
        await st.hs.read(p.data);
        const events = [];
        if (initiator) {
          const data = await st.hs.write(new Uint8Array(0));
          events.push({ type: "send", payload: encodePayload({ kind: "finish", sid: st.sid, data }) });
        }
        const transport = await st.hs.finish();
        return events.concat(await this.open(st.sid, transport));
      } catch (_) {
        this.state = { kind: "idle" };
        return [{ type: "rejected", reason: "handshake-failed" }];
      }
    }
    async open(sid, transport) {
      const key = transport.remoteStatic;
      this.state = { kind: "open", sid, transport };
      const check = this.pins.check(this.server, this.peer, key);
      const events = [];
      if (check.status === "changed") {
        this.unaccepted = key;
        return [{ type: "key-changed", key }];
      }
      if (check.status === "first-contact") this.pins.accept(this.server, this.peer, key);
      events.push({ type: "secure", key, firstContact: check.status === "first-contact", verified: !!check.verified });
      this.unaccepted = null;
      return events.concat(await this.flush());
    }
    async flush() {
      const events = this.held.splice(0).map((text) => ({ type: "message", text }));
      if (this.state.kind === "open") {
        for (const text of this.queued.splice(0)) events.push(await this.seal(text));
      }
      return events;
    }
    async acceptNow() {
      const key = this.unaccepted;
      if (!key) return [];
      this.pins.accept(this.server, this.peer, key);
      this.unaccepted = null;
      return [{ type: "secure", key, firstContact: false, verified: false }].concat(await this.flush());
    }
    async onMessage(p) {
      const st = this.state;
      if (st.kind !== "open" || !equal(st.sid, p.sid)) return this.unknownSession();
      const expected = st.transport.recv.nonce;
      if (p.n < expected) return [{ type: "rejected", reason: "replayed" }];
      if (p.n - expected > MAX_SKIP) return [{ type: "rejected", reason: "tampered" }];
      const recv = st.transport.recv.clone();
      await recv.skipTo(p.n);
      let text = null;
      try { text = unpad(await recv.decrypt(new Uint8Array(0), p.data)); } catch (_) { text = null; }
      if (text === null) return [{ type: "rejected", reason: "tampered" }];
      await recv.rekey();
      st.transport.recv = recv;
      const events = [];
      if (p.n > expected) events.push({ type: "lost", count: Number(p.n - expected) });
      if (this.unaccepted) {
        if (this.held.length < MAX_HELD) this.held.push(text);
      } else {
        events.push({ type: "message", text });
      }
      return events;
    }
    async unknownSession() {
      const events = [{ type: "rejected", reason: "unknown-session" }];
      if (this.state.kind !== "handshaking") events.push(await this.startNow());
      return events;
    }
  }

  // The directory's answer (`* keys PEER: K1 K2`, or `none`) to the `:keys`
  // a client asks before a new handshake: a warning when the peer has no
  // key, or when none of its listed keys is one accepted before; else null.
  // The same sentences as crates/client/src/e2e/client.rs.
  const keysWarning = (server, peer, answer, pins) => {
    const listed = answer === "none" ? [] : answer.split(" ").map(decodeKey).filter(Boolean);
    if (listed.length === 0) {
      return `${peer} has published no end-to-end key, so cannot read end-to-end messages yet `
        + `(yours waits; nothing was sent in the clear); a plain :pm reaches ${peer} but is readable by the server`;
    }
    if (listed.every((key) => pins.check(server, peer, key).status === "changed")) {
      return `the server lists keys for ${peer} that you never accepted (a new device, or someone in `
        + "between): the handshake will tell, and nothing is sent to a changed key until you accept it";
    }
    return null;
  };

  // The device key: a non-extractable X25519 private key in IndexedDB.
  const DB_NAME = "loopchat-e2e";
  const request = (req) => new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const openDb = () => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("keys");
    return request(req);
  };
  const loadOrCreateDeviceKey = async () => {
    const db = await openDb();
    try {
      const stored = await request(db.transaction("keys").objectStore("keys").get("device"));
      if (stored && stored.privateKey && stored.public) return stored;
      const pair = await generateKeyPair();
      await request(db.transaction("keys", "readwrite").objectStore("keys").put(pair, "device"));
      return pair;
    } finally {
      db.close();
    }
  };

  // Whether this page can do end-to-end encryption, and if not why.
  const availability = (async () => {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      return {
        ok: false,
        why: "this page is not a secure context (plain HTTP from another host): WebCrypto needs HTTPS "
          + "or a loopback address, so private messages here would be readable by the server",
      };
    }
    try {
      await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]);
    } catch (_) {
      return { ok: false, why: "this browser's WebCrypto has no X25519" };
    }
    return { ok: true, why: "" };
  })();

  // On a page that cannot, say so where the messages are.
  availability.then((result) => {
    if (result.ok) return;
    const show = () => {
      const note = document.createElement("p");
      note.id = "e2e-status";
      note.className = "e2e-status";
      note.setAttribute("role", "note");
      note.textContent = `End-to-end encryption is unavailable: ${result.why}.`;
      const chat = document.querySelector("main.chat") || document.body;
      chat.prepend(note);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
    else show();
  });

  return {
    E2EError, KEY_LEN, PAD_STEP, MAX_TEXT,
    hex, unhex, b64url, unb64url, encodeKey, decodeKey, concat,
    hash, hkdf, hkdf2, aesGcmEncrypt, aesGcmDecrypt, rekeyed,
    keyPairFromSecret, generateKeyPair, dh,
    CipherState, Handshake, encodePayload, decodePayload, pad, unpad, prologue,
    safetyNumber, grouped, Pins, Conversation, keysWarning, loadOrCreateDeviceKey, availability,
  };
})();
