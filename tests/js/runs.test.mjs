// Runs through the JS SDK: background + join, wait, stream modes, stateless runs, list, get, cancel, joinStream.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import {
  AGENT_ASSISTANT_ID,
  TEST_TIMEOUT_MS,
  UUID,
  collect,
  contents,
  human,
  lastContent,
  makeClient,
  rejectsWithStatus,
  streamDeadline,
  waitForRunStatus,
} from "./helpers.mjs";

const client = makeClient();
const options = { timeout: TEST_TIMEOUT_MS };
const slow = (delay) => ({ input: { steps: [] }, config: { configurable: { delay } } });

async function newThread() {
  return (await client.threads.create()).thread_id;
}

test("create a background run, join it, get it, list it", options, async () => {
  const threadId = await newThread();
  let created;
  const run = await client.runs.create(threadId, "slow", { ...slow(0.3), onRunCreated: (meta) => (created = meta) });
  assert.match(run.run_id, UUID);
  // The SDK learns the run from the Content-Location header, as useStream does.
  assert.deepEqual(created, { run_id: run.run_id, thread_id: threadId });
  assert.equal(run.thread_id, threadId);
  assert.ok(["pending", "running"].includes(run.status), run.status);
  assert.deepEqual(await client.runs.join(threadId, run.run_id), { steps: ["step 1"] });

  const fetched = await client.runs.get(threadId, run.run_id);
  assert.equal(fetched.run_id, run.run_id);
  assert.equal(fetched.status, "success");
  assert.equal(fetched.assistant_id, (await client.assistants.get("slow")).assistant_id);

  const second = await client.runs.create(threadId, "slow", slow(0));
  assert.deepEqual(await client.runs.join(threadId, second.run_id), { steps: ["step 1", "step 2"] });
  const listed = await client.runs.list(threadId);
  assert.deepEqual(
    listed.map((r) => r.run_id),
    [second.run_id, run.run_id], // newest first
  );
  assert.ok(listed.every((r) => r.thread_id === threadId && r.status === "success"));
  const limited = await client.runs.list(threadId, { limit: 1, offset: 1 });
  assert.deepEqual(
    limited.map((r) => r.run_id),
    [run.run_id],
  );
  assert.equal((await client.runs.list(threadId, { status: "running" })).length, 0);

  await rejectsWithStatus(client.runs.get(threadId, randomUUID()), 404);
  await rejectsWithStatus(client.runs.join(threadId, randomUUID()), 404);
});

test("wait returns the final values; an interrupt is resumed with a command", options, async () => {
  const threadId = await newThread();
  const result = await client.runs.wait(threadId, "agent", { input: human("my name is Ada") });
  assert.deepEqual(contents(result), ["my name is Ada", "Nice to meet you, Ada!"]);
  assert.equal(result.messages[1].type, "ai");

  const approvalThread = await newThread();
  const interrupted = await client.runs.wait(approvalThread, "approval", { input: { request: "leave", log: [] } });
  assert.deepEqual(interrupted.__interrupt__[0].value, { question: "approve leave?" });
  assert.equal((await client.threads.get(approvalThread)).status, "interrupted");
  assert.deepEqual((await client.threads.getState(approvalThread)).next, ["ask"]);
  const resumed = await client.runs.wait(approvalThread, "approval", { command: { resume: "yes" } });
  assert.deepEqual(resumed.log, ["answer: yes", "done"]);
  assert.equal((await client.threads.get(approvalThread)).status, "idle");
});

test("stream values, updates, messages-tuple and debug", options, async () => {
  const threadId = await newThread();
  let created;
  const parts = await collect(
    client.runs.stream(threadId, "agent", {
      input: human("my name is Ada"),
      streamMode: ["values", "updates", "messages-tuple", "debug"],
      onRunCreated: (meta) => (created = meta),
      signal: streamDeadline(),
    }),
  );
  const events = parts.map((p) => p.event);
  assert.equal(events[0], "metadata");
  assert.match(parts[0].data.run_id, UUID);
  assert.deepEqual(created, { run_id: parts[0].data.run_id, thread_id: threadId });
  assert.ok(!events.includes("error"), JSON.stringify(parts.filter((p) => p.event === "error")));

  const values = parts.filter((p) => p.event === "values").map((p) => p.data);
  assert.deepEqual(contents(values[0]), ["my name is Ada"]);
  assert.deepEqual(contents(values.at(-1)), ["my name is Ada", "Nice to meet you, Ada!"]);

  const updates = parts.filter((p) => p.event === "updates").map((p) => p.data);
  const modelUpdate = updates.find((u) => "model" in u);
  assert.ok(modelUpdate, JSON.stringify(updates));
  assert.equal(lastContent(modelUpdate.model), "Nice to meet you, Ada!");

  // messages-tuple: [message chunk, metadata] pairs whose chunks add up to the AI message.
  const tuples = parts.filter((p) => p.event === "messages").map((p) => p.data);
  assert.ok(tuples.length > 0, `no messages events in ${events}`);
  for (const [message, metadata] of tuples) {
    assert.equal(metadata.langgraph_node, "model");
    assert.ok(["ai", "AIMessageChunk"].includes(message.type), message.type);
  }
  assert.equal(tuples.map(([message]) => message.content).join(""), "Nice to meet you, Ada!");

  const debug = parts.filter((p) => p.event === "debug").map((p) => p.data);
  const types = new Set(debug.map((d) => d.type));
  assert.ok(types.has("checkpoint") && types.has("task") && types.has("task_result"), [...types].join());
  assert.ok(debug.some((d) => d.type === "task" && d.payload.name === "model"));

  const run = await client.runs.get(threadId, parts[0].data.run_id);
  assert.equal(run.status, "success");
});

test("stream only the modes asked for: updates alone", options, async () => {
  const threadId = await newThread();
  const parts = await collect(
    client.runs.stream(threadId, "slow", { ...slow(0), streamMode: "updates", signal: streamDeadline() }),
  );
  assert.deepEqual(
    parts.map((p) => p.event),
    ["metadata", "updates"],
  );
  assert.deepEqual(parts[1].data, { work: { steps: ["step 1"] } });
});

test("stream custom and events modes", options, async () => {
  const threadId = await newThread();
  const parts = await collect(
    client.runs.stream(threadId, "approval", {
      input: { request: "leave", log: [] },
      streamMode: ["custom", "events"],
      signal: streamDeadline(),
    }),
  );
  assert.deepEqual(new Set(parts.map((p) => p.event)), new Set(["metadata", "custom", "events"]));
  const custom = parts.filter((p) => p.event === "custom").map((p) => p.data);
  assert.deepEqual(custom, [{ progress: "asking" }]);
  const streamed = parts.filter((p) => p.event === "events").map((p) => p.data);
  assert.ok(streamed.some((e) => e.event === "on_chain_start" && e.name === "ask"), JSON.stringify(streamed));
  assert.ok(streamed.some((e) => e.event === "on_custom_event" || e.event === "on_chain_stream"));
});

test("stateless runs: wait and stream with no thread", options, async () => {
  const waited = await client.runs.wait(null, "agent", { input: human("my name is Bo") });
  assert.deepEqual(contents(waited), ["my name is Bo", "Nice to meet you, Bo!"]);

  const parts = await collect(
    client.runs.stream(null, "agent", {
      input: human("my name is Cy"),
      streamMode: ["values", "updates"],
      signal: streamDeadline(),
    }),
  );
  assert.equal(parts[0].event, "metadata");
  assert.match(parts[0].data.run_id, UUID);
  assert.equal(parts.at(-1).event, "values");
  assert.deepEqual(contents(parts.at(-1).data), ["my name is Cy", "Nice to meet you, Cy!"]);
  assert.ok(parts.some((p) => p.event === "updates" && "model" in p.data));

  const byUuid = await client.runs.wait(null, AGENT_ASSISTANT_ID, { input: human("my name is Di") });
  assert.equal(lastContent(byUuid), "Nice to meet you, Di!");
});

test("cancel a running run", options, async () => {
  const threadId = await newThread();
  const run = await client.runs.create(threadId, "slow", slow(5));
  await waitForRunStatus(client, threadId, run.run_id, "running");
  const began = Date.now();
  await client.runs.cancel(threadId, run.run_id, true);
  assert.ok(Date.now() - began < 3_000, `cancel took ${Date.now() - began} ms`);
  assert.equal((await client.runs.get(threadId, run.run_id)).status, "interrupted");
  // The thread takes a new run at once.
  assert.deepEqual(await client.runs.wait(threadId, "slow", slow(0)), { steps: ["step 1"] });
  await rejectsWithStatus(client.runs.cancel(threadId, randomUUID()), 404);
});

test("runs.joinStream follows a run and replays after lastEventId", options, async () => {
  const threadId = await newThread();
  const run = await client.runs.create(threadId, "slow", {
    ...slow(0.3),
    streamMode: ["values", "updates"],
    streamResumable: true,
  });
  const full = await collect(client.runs.joinStream(threadId, run.run_id, { signal: streamDeadline() }));
  assert.deepEqual(
    full.map((p) => p.event),
    ["metadata", "values", "updates", "values"],
  );
  assert.equal(full[0].data.run_id, run.run_id);
  assert.deepEqual(full.at(-1).data, { steps: ["step 1"] });
  const ids = full.map((p) => p.id);
  assert.ok(
    ids.every((id) => typeof id === "string" && id !== ""),
    `events without ids: ${JSON.stringify(ids)}`,
  );
  assert.equal(new Set(ids).size, ids.length, `repeated ids: ${JSON.stringify(ids)}`);
  assert.equal((await client.runs.get(threadId, run.run_id)).status, "success");

  // A client that saw the first two events reconnects: it gets exactly the rest, with the same ids.
  const replay = await collect(
    client.runs.joinStream(threadId, run.run_id, { lastEventId: full[1].id, signal: streamDeadline() }),
  );
  assert.deepEqual(
    replay.map((p) => [p.id, p.event, p.data]),
    full.slice(2).map((p) => [p.id, p.event, p.data]),
  );

  const onlyUpdates = await collect(
    client.runs.joinStream(threadId, run.run_id, { streamMode: "updates", signal: streamDeadline() }),
  );
  assert.deepEqual(
    onlyUpdates.map((p) => [p.event, p.data]),
    [
      ["metadata", { run_id: run.run_id, attempt: 1 }],
      ["updates", { work: { steps: ["step 1"] } }],
    ],
  );
});
