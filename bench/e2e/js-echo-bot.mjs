// bench/e2e/js-echo-bot.mjs - the reference bot for bench_side_by_side.py:
// a minimal matrix-js-sdk echo bot with Rust crypto, written the way the
// SDK documents it (createClient, initRustCrypto, startClient, react to
// RoomEvent.Timeline, decrypt, sendTextMessage), with the SDK's defaults
// everywhere: no tuning, so it stands for a typical bot on Element's stack.
// It joins every room it is invited to and answers "!ping" with "pong".
//
// Environment: MX_HS_URL, BOT_USER, BOT_PW. Prints "js-echo-bot: ready
// USER_ID DEVICE_ID" on stdout once syncing; everything else on stderr.
// Runs from the directory setup-peer prints (it needs that node_modules).
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// logs at warn and above, on stderr, like mxfleet at its default level:
// the Rust crypto's tracing writes DEBUG lines through console.debug
logger.setLevel("warn");
console.debug = () => {};
console.log = console.info = console.warn = console.error;
const baseUrl = process.env.MX_HS_URL;

const login = await sdk.createClient({ baseUrl }).loginRequest({
  type: "m.login.password",
  identifier: { type: "m.id.user", user: process.env.BOT_USER },
  password: process.env.BOT_PW,
  initial_device_display_name: "js echo bot",
});
const client = sdk.createClient({
  baseUrl,
  accessToken: login.access_token,
  userId: login.user_id,
  deviceId: login.device_id,
});
await client.initRustCrypto({ useIndexedDB: false });

client.on(sdk.RoomMemberEvent.Membership, (event, member) => {
  if (member.membership === "invite" && member.userId === client.getUserId()) {
    client.joinRoom(member.roomId).catch((e) => console.error(`join ${member.roomId}: ${e}`));
  }
});

client.on(sdk.RoomEvent.Timeline, async (event, room, toStartOfTimeline) => {
  if (toStartOfTimeline || event.getSender() === client.getUserId()) return;
  await client.decryptEventIfNeeded(event);
  if (event.getType() !== "m.room.message" || event.getContent().body !== "!ping") return;
  try {
    await client.sendTextMessage(room.roomId, "pong");
  } catch (e) {
    console.error(`send to ${room.roomId}: ${e}`);
  }
});

await new Promise((resolve) => {
  client.on(sdk.ClientEvent.Sync, (state) => {
    if (state === "PREPARED") resolve();
  });
  client.startClient();
});
process.stdout.write(`js-echo-bot: ready ${login.user_id} ${login.device_id}\n`);
process.on("SIGTERM", () => {
  client.stopClient();
  process.exit(0);
});
