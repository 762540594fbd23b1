// The built-in agent (offline deterministic model) as a chat UI uses it through the JS SDK:
// memory across turns of a thread, and the checkpoint round trip of the React `useStream` hook.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TEST_TIMEOUT_MS, collect, contents, human, makeClient, streamDeadline } from "./helpers.mjs";

const client = makeClient();
const options = { timeout: TEST_TIMEOUT_MS };

/** What `useStream`'s submit sends: the head checkpoint of getHistory, without its thread_id. */
async function headCheckpoint(threadId) {
  const history = await client.threads.getHistory(threadId, { limit: 1 });
  assert.equal(history.length, 1);
  const checkpoint = { ...history[0].checkpoint };
  assert.equal(checkpoint.thread_id, threadId);
  assert.ok(checkpoint.checkpoint_id, JSON.stringify(checkpoint));
  delete checkpoint.thread_id;
  return checkpoint;
}

/** The thread's head descends from `checkpoint`: the run continued from it. */
async function assertGrewFrom(threadId, checkpoint) {
  const history = await client.threads.getHistory(threadId, { limit: 50 });
  const byId = new Map(history.map((h) => [h.checkpoint.checkpoint_id, h]));
  const ancestors = [];
  for (let h = history[0]; h?.parent_checkpoint; h = byId.get(h.parent_checkpoint.checkpoint_id)) {
    ancestors.push(h.parent_checkpoint.checkpoint_id);
  }
  assert.ok(
    ancestors.includes(checkpoint.checkpoint_id),
    `checkpoint ${checkpoint.checkpoint_id} is not an ancestor of the head: ${ancestors}`,
  );
}

/** Streams a run as `useStream` does, and checks that it ended without an error event. */
async function submit(threadId, text, checkpoint) {
  let created;
  const parts = await collect(
    client.runs.stream(threadId, "agent", {
      input: human(text),
      checkpoint,
      streamMode: ["values", "messages-tuple"],
      onDisconnect: "cancel",
      streamResumable: false,
      onRunCreated: (meta) => (created = meta),
      signal: streamDeadline(),
    }),
  );
  const errors = parts.filter((p) => p.event === "error");
  assert.deepEqual(errors, [], `the run sent error events: ${JSON.stringify(errors)}`);
  assert.equal(parts[0].event, "metadata");
  assert.deepEqual(created, { run_id: parts[0].data.run_id, thread_id: threadId });
  const run = await client.runs.get(threadId, parts[0].data.run_id);
  assert.equal(run.status, "success", JSON.stringify(run));
  return parts.filter((p) => p.event === "values").at(-1).data;
}

test("the agent remembers the user's name across turns of a thread", options, async () => {
  const { thread_id: threadId } = await client.threads.create();
  const first = await client.runs.wait(threadId, "agent", { input: human("my name is Ada") });
  assert.deepEqual(contents(first), ["my name is Ada", "Nice to meet you, Ada!"]);
  const second = await client.runs.wait(threadId, "agent", { input: human("what is my name?") });
  assert.deepEqual(contents(second), [
    "my name is Ada",
    "Nice to meet you, Ada!",
    "what is my name?",
    "Your name is Ada.",
  ]);
  const other = await client.threads.create();
  const stranger = await client.runs.wait(other.thread_id, "agent", { input: human("what is my name?") });
  assert.notEqual(stranger.messages.at(-1).content, "Your name is Ada.");
});

test("useStream round trip: the head checkpoint from getHistory sent back into runs.stream", options, async () => {
  const { thread_id: threadId } = await client.threads.create();
  const first = await submit(threadId, "my name is Ada");
  assert.deepEqual(contents(first), ["my name is Ada", "Nice to meet you, Ada!"]);

  const checkpoint = await headCheckpoint(threadId);
  const second = await submit(threadId, "what is my name?", checkpoint);
  assert.deepEqual(contents(second), [
    "my name is Ada",
    "Nice to meet you, Ada!",
    "what is my name?",
    "Your name is Ada.",
  ]);
  const state = await client.threads.getState(threadId);
  assert.deepEqual(contents(state.values), contents(second));
  await assertGrewFrom(threadId, checkpoint);
});

test("an earlier checkpoint sent back forks the thread from there", options, async () => {
  const { thread_id: threadId } = await client.threads.create();
  await submit(threadId, "my name is Ada");
  const afterAda = await headCheckpoint(threadId);
  const renamed = await submit(threadId, "my name is Bo", await headCheckpoint(threadId));
  assert.equal(renamed.messages.at(-1).content, "Nice to meet you, Bo!");

  // Editing from the first answer on: the conversation about Bo is not in this branch.
  const forked = await submit(threadId, "what is my name?", afterAda);
  assert.deepEqual(contents(forked), [
    "my name is Ada",
    "Nice to meet you, Ada!",
    "what is my name?",
    "Your name is Ada.",
  ]);
  const head = await client.threads.getState(threadId);
  assert.deepEqual(contents(head.values), contents(forked));
  await assertGrewFrom(threadId, afterAda);
});
