// Joins a townhall quiz game with the real socket.io-client and answers every question.
// Usage: node play.mjs BASE_URL PIN NICKNAME ANSWER; prints one JSON line per event.
import { io } from "socket.io-client";

const [base, pin, nickname, answer] = process.argv.slice(2);
const socket = io(`${base}/quiz`, { transports: ["websocket"], reconnection: false });
const out = (event, data) => console.log(JSON.stringify({ event, data }));
const fail = (why) => { out("failure", why); process.exit(1); };

socket.on("connect_error", (err) => fail(String(err)));
socket.on("error", (err) => out("error", err));
socket.on("connect", async () => {
  const joined = await socket.emitWithAck("join", { pin, nickname });
  out("joined", joined);
  if (!joined.ok) fail("join refused");
});
socket.on("question", async (q) => {
  out("question", { index: q.index, type: q.type });
  const ack = await socket.emitWithAck("answer", { index: q.index, answer: Number(answer) });
  out("answered", ack);
});
socket.on("question_results", (r) => out("question_results", { index: r.index, top: r.top }));
socket.on("game_over", (g) => {
  out("game_over", g);
  socket.close();
  process.exit(0);
});
setTimeout(() => fail("timeout"), 60000);
