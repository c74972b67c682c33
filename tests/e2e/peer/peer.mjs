// tests/e2e/peer/peer.mjs - Element's crypto as a scripted test peer:
// matrix-js-sdk with its Rust crypto (matrix-sdk-crypto-wasm), the stack
// Element Web uses. Reads one command per line on stdin, answers one JSON
// line per command on stdout prefixed "@@ "; everything else (sdk logs)
// goes to stderr. Several named clients (devices) can live in one process.
//
//   NAME login USER PASSWORD            log in a new device, start syncing
//   NAME xsign PASSWORD                 bootstrap cross-signing (signs this device); again:
//                                       reset the identity (new keys) -> master_key
//   NAME create_dm USER                 new encrypted room, USER invited -> room_id
//   NAME join_any ROOM                  join without waiting for encryption state
//   NAME join ROOM | leave ROOM | invite ROOM USER | kick ROOM USER
//   NAME wait_join ROOM USER SECS       until USER's membership is join
//   NAME send ROOM TEXT...              encrypted m.text -> event_id
//   NAME wait_reply ROOM SENDER SECS    next decrypted message from SENDER -> body
//   NAME react ROOM EVENT KEY...        m.reaction (annotation) to EVENT -> event_id
//   NAME reply ROOM EVENT TEXT...       m.text replying to EVENT -> event_id
//   NAME send_file ROOM PATH [tamper]   encrypted attachment (v2, AES-CTR) -> sha256 of plaintext
//   NAME send_voice ROOM PATH MS [tamper]  the same as an Element voice message (m.audio, MSC3245)
//   NAME verify_status USER DEVICE      getDeviceVerificationStatus -> flags
//   NAME devices USER                   device ids js-sdk knows for USER
//   NAME push_actions ROOM EVENT        this account's push rules on the decrypted EVENT
//                                       (what Element decides for the phone) -> notify, highlight
//   NAME history ROOM SENDER            every message from SENDER in the live timeline, decrypted:
//                                       -> messages [{event_id, body, msgtype, reply_to, rel_type, utd}]
//   NAME wait_utd ROOM SENDER SECS CODE next undecryptable message -> failure reason
//   NAME bench ROOM SENDER N TEXT...    N sequential round trips -> latencies_ms
//   NAME bench_pair ROOM SENDER N TEXT...  N pairs sent back to back -> the seconds' latencies_ms
//   NAME stop                           stop the client
//   quit
import * as readline from "node:readline";
import * as fs from "node:fs";
import * as crypto from "node:crypto";

console.log = console.error;
console.info = console.error;
console.warn = console.error;
console.debug = () => {};

const sdk = await import("matrix-js-sdk");
try {
  const { logger } = await import("matrix-js-sdk/lib/logger.js");
  logger.setLevel(process.env.PEER_DEBUG ? "debug" : "warn");
} catch (e) {
  /* older layouts: keep default logging on stderr */
}

const baseUrl = process.env.MX_HS_URL;
const clients = new Map(); // name -> { client, seen:Set }

function out(obj) {
  process.stdout.write("@@ " + JSON.stringify(obj) + "\n");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(secs, fn, what) {
  const deadline = Date.now() + secs * 1000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timeout after ${secs}s waiting for ${what}`);
    await sleep(200);
  }
}

async function login(name, user, pw) {
  const tmp = sdk.createClient({ baseUrl });
  const res = await tmp.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password: pw,
    initial_device_display_name: `peer ${name}`,
  });
  const client = sdk.createClient({
    baseUrl,
    accessToken: res.access_token,
    userId: res.user_id,
    deviceId: res.device_id,
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise((resolve) =>
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    }),
  );
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  clients.set(name, { client, seen: new Set(), pw });
  return { user_id: res.user_id, device_id: res.device_id };
}

function c(name) {
  const e = clients.get(name);
  if (!e) throw new Error(`no client '${name}'`);
  return e;
}

async function xsign(name, pw) {
  const { client } = c(name);
  const userId = client.getUserId();
  await client.getCrypto().bootstrapCrossSigning({
    setupNewCrossSigning: true,
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password: pw,
      });
    },
  });
  const st = await client.getCrypto().getCrossSigningStatus();
  return { publicKeysOnDevice: st.publicKeysOnDevice, privateKeysInSecretStorage: st.privateKeysInSecretStorage,
           master_key: await client.getCrypto().getCrossSigningKeyId() };
}

async function createDm(name, user) {
  const { client } = c(name);
  const r = await client.createRoom({
    preset: "private_chat",
    is_direct: true,
    invite: [user],
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
  });
  await until(20, () => client.getRoom(r.room_id), "room in sync");
  return { room_id: r.room_id };
}

async function waitJoin(name, roomId, user, secs) {
  const { client } = c(name);
  await until(Number(secs), () => client.getRoom(roomId)?.getMember(user)?.membership === "join", `${user} to join`);
  return { joined: true };
}

async function waitReply(name, roomId, sender, secs) {
  const e = c(name);
  let utd = null;
  const ev = await until(
    Number(secs),
    async () => {
      const room = e.client.getRoom(roomId);
      if (!room) return null;
      for (const ev of room.getLiveTimeline().getEvents()) {
        if (ev.getSender() !== sender || e.seen.has(ev.getId())) continue;
        if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) {
          if (ev.isDecryptionFailure()) utd = ev.getId();
          await e.client.decryptEventIfNeeded(ev);
          if (ev.isDecryptionFailure()) continue;
        }
        if (ev.getType() !== "m.room.message") continue;
        e.seen.add(ev.getId());
        return ev;
      }
      return null;
    },
    `a message from ${sender}${utd ? " (last one was UTD: " + utd + ")" : ""}`,
  );
  return { body: ev.getContent().body, msgtype: ev.getContent().msgtype, encrypted: ev.isEncrypted(),
           event_id: ev.getId() };
}

async function history(name, roomId, sender) {
  const e = c(name);
  const room = e.client.getRoom(roomId);
  const msgs = [];
  for (const ev of room ? room.getLiveTimeline().getEvents() : []) {
    if (ev.getSender() !== sender) continue;
    if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) await e.client.decryptEventIfNeeded(ev);
    const utd = ev.isDecryptionFailure();
    if (!utd && ev.getType() !== "m.room.message") continue;
    // an encrypted event carries m.relates_to in the clear (wire content)
    const rel = ev.getContent()["m.relates_to"] || ev.getWireContent()["m.relates_to"] || {};
    msgs.push({ event_id: ev.getId(), body: ev.getContent().body, msgtype: ev.getContent().msgtype, utd,
                reply_to: ev.replyEventId || rel["m.in_reply_to"]?.event_id || null, rel_type: rel.rel_type || null });
  }
  return { messages: msgs };
}

// The next message from SENDER that this device cannot decrypt, once its
// failure reason is a withheld code (or the deadline passes): -> reason.
async function waitUtd(name, roomId, sender, secs, want) {
  const e = c(name);
  let last = null;
  try {
    return await until(
      Number(secs),
      async () => {
        const room = e.client.getRoom(roomId);
        for (const ev of room ? room.getLiveTimeline().getEvents() : []) {
          if (ev.getSender() !== sender || e.seen.has(ev.getId())) continue;
          await e.client.decryptEventIfNeeded(ev);
          if (!ev.isDecryptionFailure()) {
            if (ev.getType() === "m.room.message") throw new Error(`decrypted '${ev.getContent().body}'`);
            continue;
          }
          last = { reason: ev.decryptionFailureReason, event_id: ev.getId() };
          if (last.reason === want) {
            e.seen.add(ev.getId());
            return last;
          }
        }
        return null;
      },
      `an undecryptable message with reason ${want}`,
    );
  } catch (err) {
    if (last) return last;
    throw err;
  }
}

function markSeen(name, roomId) {
  const e = c(name);
  const room = e.client.getRoom(roomId);
  for (const ev of room ? room.getLiveTimeline().getEvents() : []) e.seen.add(ev.getId());
}

async function sendFile(name, roomId, path, tamper, voiceMs) {
  const { client } = c(name);
  const plain = fs.readFileSync(path);
  const key = crypto.randomBytes(32);
  const iv = Buffer.concat([crypto.randomBytes(8), Buffer.alloc(8)]);
  const cipher = crypto.createCipheriv("aes-256-ctr", key, iv);
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  const b64 = (b) => b.toString("base64").replace(/=+$/, "");
  const hash = b64(crypto.createHash("sha256").update(ct).digest());
  if (tamper) ct[0] ^= 1; // uploaded bytes no longer match the announced hash
  const up = await client.uploadContent(ct, { type: "application/octet-stream", includeFilename: false });
  const file = {
    url: up.content_uri,
    key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: key.toString("base64url"), ext: true },
    iv: b64(iv),
    hashes: { sha256: hash },
    v: "v2",
  };
  if (voiceMs) {
    // Element's voice message: m.audio, Ogg/Opus, the MSC3245 voice marker
    await client.sendMessage(roomId, {
      msgtype: "m.audio",
      body: "Voice message.ogg",
      info: { mimetype: "audio/ogg", size: plain.length, duration: Number(voiceMs) },
      "org.matrix.msc1767.audio": { duration: Number(voiceMs), waveform: [] },
      "org.matrix.msc3245.voice": {},
      file,
    });
  } else {
    await client.sendMessage(roomId, { msgtype: "m.file", body: "file.bin", info: { size: plain.length }, file });
  }
  return { sha256: crypto.createHash("sha256").update(plain).digest("hex") };
}

async function verifyStatus(name, user, device) {
  const { client } = c(name);
  const crypto_ = client.getCrypto();
  await crypto_.getUserDeviceInfo([user], true);
  const s = await until(15, () => crypto_.getDeviceVerificationStatus(user, device), `device ${user}/${device}`);
  return {
    signedByOwner: s.signedByOwner,
    crossSigningVerified: s.crossSigningVerified,
    localVerified: s.localVerified,
    isVerified: s.isVerified(),
  };
}

// The next decrypted message from SENDER in ROOM not seen yet. The wait is
// woken by the SDK's own events (a timeline event, an event decrypted), not
// a poll, so a reply counts the moment the SDK has it decrypted.
async function nextReply(e, roomId, sender, what) {
  const deadline = Date.now() + 60000;
  let wake = null;
  const poke = () => {
    const w = wake;
    wake = null;
    if (w) w();
  };
  e.client.on(sdk.RoomEvent.Timeline, poke);
  e.client.on(sdk.MatrixEventEvent.Decrypted, poke);
  try {
    for (;;) {
      // armed before the scan: an event arriving during it wakes the next wait
      const woken = new Promise((r) => {
        wake = r;
      });
      for (const ev of e.client.getRoom(roomId).getLiveTimeline().getEvents()) {
        if (ev.getSender() !== sender || e.seen.has(ev.getId())) continue;
        if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) await e.client.decryptEventIfNeeded(ev);
        if (ev.isDecryptionFailure()) throw new Error(`UTD reply ${ev.getId()}`);
        if (ev.getType() !== "m.room.message") continue;
        e.seen.add(ev.getId());
        return ev;
      }
      if (Date.now() > deadline) throw new Error(`no reply to ${what}`);
      await Promise.race([woken, sleep(1000)]); // the timer only bounds a missed wake-up
    }
  } finally {
    e.client.off(sdk.RoomEvent.Timeline, poke);
    e.client.off(sdk.MatrixEventEvent.Decrypted, poke);
  }
}

// N round trips of TEXT, each from starting to send it until its reply is
// decrypted. Returns per-message latencies in ms.
async function bench(name, roomId, sender, n, text) {
  const e = c(name);
  const lat = [];
  markSeen(name, roomId);
  for (let i = 0; i < Number(n); i++) {
    const t0 = performance.now();
    await e.client.sendTextMessage(roomId, text);
    await nextReply(e, roomId, sender, `message ${i}`);
    lat.push(performance.now() - t0);
  }
  return { latencies_ms: lat };
}

// N pairs: TEXT, then TEXT again as soon as the first is sent (it reaches
// the bot while the bot answers the first); the latency of the second, from
// starting to send it until the second reply is decrypted.
async function benchPair(name, roomId, sender, n, text) {
  const e = c(name);
  const lat = [];
  markSeen(name, roomId);
  for (let i = 0; i < Number(n); i++) {
    await e.client.sendTextMessage(roomId, text);
    const t1 = performance.now();
    await e.client.sendTextMessage(roomId, text);
    await nextReply(e, roomId, sender, `pair ${i}, first`);
    await nextReply(e, roomId, sender, `pair ${i}, second`);
    lat.push(performance.now() - t1);
  }
  return { latencies_ms: lat };
}

async function run(name, cmd, args) {
  const { client } = cmd === "login" ? { client: null } : c(name);
  switch (cmd) {
    case "login":
      return login(name, args[0], args[1]);
    case "xsign":
      return xsign(name, args[0]);
    case "create_dm":
      return createDm(name, args[0]);
    case "join":
      await client.joinRoom(args[0]);
      // sending before the encryption state is known fails ("unconfigured room")
      await until(30, () => client.getRoom(args[0])?.hasEncryptionStateEvent(), "room encryption state");
      await until(30, () => client.getCrypto().isEncryptionEnabledInRoom(args[0]), "crypto room setup");
      return { joined: true };
    case "join_any":
      // a room that may or may not be encrypted (e.g. the alerts room)
      await client.joinRoom(args[0]);
      await until(30, () => client.getRoom(args[0])?.getMyMembership() === "join", "the join");
      return { joined: true };
    case "leave":
      await client.leave(args[0]);
      return { left: true };
    case "invite":
      await client.invite(args[0], args[1]);
      return { invited: true };
    case "kick":
      await client.kick(args[0], args[1], "test");
      // until this client has seen the leave: only then does it rotate
      await until(30, () => client.getRoom(args[0])?.getMember(args[1])?.membership === "leave", "the kick");
      return { kicked: true };
    case "wait_join":
      return waitJoin(name, args[0], args[1], args[2]);
    case "mark_seen":
      markSeen(name, args[0]);
      return { marked: true };
    case "send": {
      const r = await client.sendTextMessage(args[0], args.slice(1).join(" "));
      return { event_id: r.event_id };
    }
    case "wait_reply":
      return waitReply(name, args[0], args[1], args[2]);
    case "history":
      return history(name, args[0], args[1]);
    case "react": {
      // note: matrix-js-sdk sends reactions unencrypted even in encrypted rooms
      const r = await client.sendEvent(args[0], "m.reaction", {
        "m.relates_to": { rel_type: "m.annotation", event_id: args[1], key: args.slice(2).join(" ") },
      });
      return { event_id: r.event_id };
    }
    case "reply": {
      const r = await client.sendMessage(args[0], {
        msgtype: "m.text",
        body: args.slice(2).join(" "),
        "m.relates_to": { "m.in_reply_to": { event_id: args[1] } },
      });
      return { event_id: r.event_id };
    }
    case "send_file":
      return sendFile(name, args[0], args[1], args[2] === "tamper");
    case "send_voice":
      return sendFile(name, args[0], args[1], args[3] === "tamper", args[2]);
    case "wait_utd":
      return waitUtd(name, args[0], args[1], args[2], args[3]);
    case "bench":
      return bench(name, args[0], args[1], args[2], args.slice(3).join(" "));
    case "bench_pair":
      return benchPair(name, args[0], args[1], args[2], args.slice(3).join(" "));
    case "verify_status":
      return verifyStatus(name, args[0], args[1]);
    case "devices": {
      const m = await client.getCrypto().getUserDeviceInfo([args[0]], true);
      return { devices: [...(m.get(args[0]) || new Map()).keys()] };
    }
    case "push_actions": {
      const ev = client.getRoom(args[0])?.findEventById(args[1]);
      if (!ev) throw new Error(`event ${args[1]} not in the timeline of ${args[0]}`);
      await client.decryptEventIfNeeded(ev);
      const a = client.getPushActionsForEvent(ev, true);
      return { notify: !!a?.notify, highlight: !!a?.tweaks?.highlight, msgtype: ev.getContent().msgtype };
    }
    case "stop":
      client.stopClient();
      clients.delete(name);
      return { stopped: true };
    default:
      throw new Error(`unknown command '${cmd}'`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
out({ ready: true });
for await (const line of rl) {
  const words = line.trim().split(/\s+/);
  if (!words[0]) continue;
  if (words[0] === "quit") break;
  const [name, cmd, ...args] = words;
  try {
    out({ ok: true, ...(await run(name, cmd, args)) });
  } catch (e) {
    out({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
for (const { client } of clients.values()) client.stopClient();
process.exit(0);
