// Run by tests/e2e_page.rs in the page (the body of an async function;
// args[0] is crates/client/src/e2e/vectors.json): every vector through
// window.LoopchatE2E; returns {checks, fails}.
const E = window.LoopchatE2E;
const v = args[0];
const fails = [];
let checks = 0;
const check = (what, ok) => { checks++; if (!ok) fails.push(what); };
const { unhex, hex } = E;
const empty = new Uint8Array(0);
for (const [i, c] of v.x25519.entries()) {
  const pair = await E.keyPairFromSecret(unhex(c.private));
  if (c.public) check(`x25519 ${i} public`, hex(pair.public) === c.public);
  check(`x25519 ${i} shared`, hex(await E.dh(pair, unhex(c.peer_public))) === c.shared);
}
for (const [i, c] of v.x25519_refused.entries()) {
  const pair = await E.keyPairFromSecret(unhex(c.private));
  let kind = null;
  try { await E.dh(pair, unhex(c.peer_public)); } catch (e) { kind = e.kind; }
  check(`x25519_refused ${i} (${c.why})`, kind === "weak-key");
}
for (const [i, c] of v.hkdf_sha256.entries()) {
  const okm = await E.hkdf(unhex(c.salt), unhex(c.ikm), unhex(c.info), c.okm.length / 2);
  check(`hkdf ${i}`, hex(okm) === c.okm);
}
for (const [i, c] of v.aes256gcm.entries()) {
  const sealed = await E.aesGcmEncrypt(unhex(c.key), unhex(c.iv), unhex(c.ad), unhex(c.plaintext));
  check(`aes-gcm ${i} encrypt`, hex(sealed) === c.ciphertext);
  const opened = await E.aesGcmDecrypt(unhex(c.key), unhex(c.iv), unhex(c.ad), unhex(c.ciphertext));
  check(`aes-gcm ${i} decrypt`, hex(opened) === c.plaintext);
}
for (const [i, c] of v.aes256gcm_refused.entries()) {
  let kind = null;
  try { await E.aesGcmDecrypt(unhex(c.key), unhex(c.iv), unhex(c.ad), unhex(c.ciphertext)); }
  catch (e) { kind = e.kind; }
  check(`aes-gcm refused ${i} (${c.why})`, kind === "decrypt");
}
const n = v.noise_xx;
const p = E.prologue(n.server, n.initiator, n.responder);
check("prologue", hex(p) === n.prologue);
const is = await E.keyPairFromSecret(unhex(n.initiator_static));
const ie = await E.keyPairFromSecret(unhex(n.initiator_ephemeral));
const rs = await E.keyPairFromSecret(unhex(n.responder_static));
const re = await E.keyPairFromSecret(unhex(n.responder_ephemeral));
check("initiator static public", hex(is.public) === n.initiator_static_public);
check("responder static public", hex(rs.public) === n.responder_static_public);
const sid = unhex(n.sid);
const hi = new E.Handshake(true, p, is, ie);
const hr = new E.Handshake(false, p, rs, re);
const kinds = ["hello", "reply", "finish"];
for (let step = 0; step < 3; step++) {
  const [writer, reader] = step % 2 === 0 ? [hi, hr] : [hr, hi];
  const data = await writer.write(empty);
  check(`handshake message ${step + 1}`, E.encodePayload({ kind: kinds[step], sid, data }) === n.handshake[step]);
  await reader.read(E.decodePayload(n.handshake[step]).data);
}
const ti = await hi.finish();
const tr = await hr.finish();
check("handshake hash (initiator)", hex(ti.handshakeHash) === n.handshake_hash);
check("handshake hash (responder)", hex(tr.handshakeHash) === n.handshake_hash);
check("remote static", hex(ti.remoteStatic) === n.responder_static_public && hex(tr.remoteStatic) === n.initiator_static_public);
for (const [i, t] of n.transport.entries()) {
  const [sender, receiver] = t.from === "initiator" ? [ti, tr] : [tr, ti];
  const number = sender.send.nonce;
  const data = await sender.send.encrypt(empty, E.pad(t.text));
  await sender.send.rekey();
  check(`transport ${i} payload`, E.encodePayload({ kind: "message", sid, n: number, data }) === t.payload);
  const opened = await receiver.recv.decrypt(empty, E.decodePayload(t.payload).data);
  await receiver.recv.rekey();
  check(`transport ${i} text`, E.unpad(opened) === t.text);
}
// A flipped byte in handshake message 2 fails the initiator's read.
const again = new E.Handshake(true, p, is, ie);
await again.write(empty);
const reply = E.decodePayload(n.handshake[1]).data;
reply[reply.length - 1] ^= 1;
let kind = null;
try { await again.read(reply); } catch (e) { kind = e.kind; }
check("flipped handshake byte", kind === "decrypt");
for (const [i, c] of v.safety.entries()) {
  const [key, peerKey] = [E.decodeKey(c.key), E.decodeKey(c.peer_key)];
  check(`safety ${i}`, await E.safetyNumber(c.account, key, c.peer, peerKey) === c.number);
  check(`safety ${i} swapped`, await E.safetyNumber(c.peer, peerKey, c.account, key) === c.number);
}
return { checks, fails };
