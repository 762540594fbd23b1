// Threads through the JS SDK: CRUD, search, count, state, history, copy, and the thread stream.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import {
  TEST_TIMEOUT_MS,
  UUID,
  contents,
  human,
  lastContent,
  makeClient,
  rejectsWithStatus,
  sleep,
  streamDeadline,
  tag,
} from "./helpers.mjs";

const client = makeClient();
const options = { timeout: TEST_TIMEOUT_MS };

test("create, get, update and delete a thread", options, async () => {
  const threadId = randomUUID();
  const created = await client.threads.create({ threadId, metadata: { owner: "ada", n: 1 } });
  assert.equal(created.thread_id, threadId);
  assert.equal(created.status, "idle");
  assert.deepEqual(created.metadata, { owner: "ada", n: 1 });
  const again = await client.threads.create({ threadId, ifExists: "do_nothing" });
  assert.deepEqual(again.metadata, { owner: "ada", n: 1 });
  await rejectsWithStatus(client.threads.create({ threadId }), 409);

  const fetched = await client.threads.get(threadId);
  assert.equal(fetched.thread_id, threadId);
  assert.deepEqual(fetched.metadata, { owner: "ada", n: 1 });

  const updated = await client.threads.update(threadId, { metadata: { n: 2, tag: "x" } });
  assert.deepEqual(updated.metadata, { owner: "ada", n: 2, tag: "x" });
  assert.deepEqual((await client.threads.get(threadId)).metadata, { owner: "ada", n: 2, tag: "x" });

  await client.threads.delete(threadId);
  await rejectsWithStatus(client.threads.get(threadId), 404);
  await rejectsWithStatus(client.threads.getState(threadId), 404);
  await rejectsWithStatus(client.threads.delete(threadId), 404);
});

test("search and count threads", options, async () => {
  const marker = tag();
  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await client.threads.create({ metadata: { suite: marker, i } })).thread_id);
  }
  await client.runs.wait(ids[0], "agent", { input: human("my name is Ada") });

  const newestFirst = await client.threads.search({ metadata: { suite: marker } });
  assert.deepEqual(
    newestFirst.map((t) => t.thread_id),
    [...ids].reverse(),
  );
  const oldestFirst = await client.threads.search({ metadata: { suite: marker }, sortBy: "created_at", sortOrder: "asc" });
  assert.deepEqual(
    oldestFirst.map((t) => t.thread_id),
    ids,
  );
  const page = await client.threads.search({ metadata: { suite: marker }, limit: 1, offset: 1, sortOrder: "asc" });
  assert.deepEqual(
    page.map((t) => t.thread_id),
    [ids[1]],
  );
  const byValue = await client.threads.search({ metadata: { suite: marker, i: 2 } });
  assert.deepEqual(
    byValue.map((t) => t.thread_id),
    [ids[2]],
  );
  const withValues = await client.threads.search({
    metadata: { suite: marker },
    values: { messages: [{ content: "my name is Ada" }] },
  });
  assert.deepEqual(
    withValues.map((t) => t.thread_id),
    [ids[0]],
  );
  assert.deepEqual(contents(withValues[0].values), ["my name is Ada", "Nice to meet you, Ada!"]);

  assert.equal(await client.threads.count({ metadata: { suite: marker } }), 3);
  assert.equal(await client.threads.count({ metadata: { suite: marker }, status: "busy" }), 0);
  assert.equal(await client.threads.count({ metadata: { suite: marker }, status: "idle" }), 3);
});

test("getState, getHistory and updateState", options, async () => {
  const { thread_id: threadId } = await client.threads.create();
  const empty = await client.threads.getState(threadId);
  assert.deepEqual(empty.values, {});
  assert.deepEqual(await client.threads.getHistory(threadId), []);

  await client.runs.wait(threadId, "agent", { input: human("my name is Ada") });
  await client.runs.wait(threadId, "agent", { input: human("what is my name?") });
  const state = await client.threads.getState(threadId);
  assert.deepEqual(contents(state.values), [
    "my name is Ada",
    "Nice to meet you, Ada!",
    "what is my name?",
    "Your name is Ada.",
  ]);
  assert.deepEqual(state.next, []);
  assert.equal(state.checkpoint.thread_id, threadId);
  assert.ok(state.checkpoint.checkpoint_id, JSON.stringify(state.checkpoint));

  const history = await client.threads.getHistory(threadId, { limit: 50 });
  assert.ok(history.length > 4, `only ${history.length} checkpoints`);
  assert.equal(history[0].checkpoint.checkpoint_id, state.checkpoint.checkpoint_id);
  assert.deepEqual(history[0].values, state.values);
  // Each checkpoint's parent is the next one in the (newest first) history.
  for (let i = 0; i < history.length - 1; i++) {
    assert.equal(history[i].parent_checkpoint.checkpoint_id, history[i + 1].checkpoint.checkpoint_id);
  }
  const limited = await client.threads.getHistory(threadId, { limit: 2 });
  assert.deepEqual(
    limited.map((h) => h.checkpoint.checkpoint_id),
    history.slice(0, 2).map((h) => h.checkpoint.checkpoint_id),
  );
  const earlier = history[3];
  const before = await client.threads.getHistory(threadId, { limit: 2, before: earlier.checkpoint });
  assert.deepEqual(
    before.map((h) => h.checkpoint.checkpoint_id),
    history.slice(4, 6).map((h) => h.checkpoint.checkpoint_id),
  );
  const at = await client.threads.getState(threadId, earlier.checkpoint.checkpoint_id);
  assert.deepEqual(at.values, earlier.values);
  const atObject = await client.threads.getState(threadId, earlier.checkpoint);
  assert.deepEqual(atObject.values, earlier.values);

  const update = await client.threads.updateState(threadId, {
    values: { messages: [{ role: "user", content: "my name is Zed" }] },
    asNode: "tools",
  });
  assert.ok(update.checkpoint.checkpoint_id, JSON.stringify(update));
  const updated = await client.threads.getState(threadId);
  assert.equal(lastContent(updated.values), "my name is Zed");
  assert.deepEqual(updated.next, ["model"]);
  const resumed = await client.runs.wait(threadId, "agent", { input: null });
  assert.equal(lastContent(resumed), "Nice to meet you, Zed!");
});

test("copy keeps the state, and the copy goes its own way", options, async () => {
  const original = await client.threads.create({ metadata: { k: "v" } });
  await client.runs.wait(original.thread_id, "agent", { input: human("my name is Ada") });
  const copy = await client.threads.copy(original.thread_id);
  assert.match(copy.thread_id, UUID);
  assert.notEqual(copy.thread_id, original.thread_id);
  assert.equal(copy.metadata.k, "v");
  assert.deepEqual(
    (await client.threads.getState(copy.thread_id)).values,
    (await client.threads.getState(original.thread_id)).values,
  );
  const answer = await client.runs.wait(copy.thread_id, "agent", { input: human("what is my name?") });
  assert.equal(lastContent(answer), "Your name is Ada.");
  const untouched = await client.threads.getState(original.thread_id);
  assert.deepEqual(contents(untouched.values), ["my name is Ada", "Nice to meet you, Ada!"]);
  await rejectsWithStatus(client.threads.copy(randomUUID()), 404);
});

test("threads.joinStream opened before any run follows the thread's next runs", options, async () => {
  const { thread_id: threadId } = await client.threads.create();
  // A client whose fetch reports when the thread stream has answered: the stream is then open
  // on the server, before any run exists on the thread.
  let answered;
  const opened = new Promise((resolve) => {
    answered = resolve;
  });
  const watcher = makeClient({
    callerOptions: {
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (new URL(url).pathname === `/threads/${threadId}/stream`) answered(response.status);
        return response;
      },
    },
  });
  const abort = new AbortController();
  const signal = AbortSignal.any([abort.signal, streamDeadline()]);
  const received = [];
  const finalValues = [{ steps: ["step 1"] }, { steps: ["step 1", "step 2"] }];
  let followed = 0;
  let ranFirst;
  const firstSeen = new Promise((resolve) => {
    ranFirst = resolve;
  });
  const following = (async () => {
    for await (const part of watcher.threads.joinStream(threadId, { signal })) {
      received.push(part);
      if (part.event === "values" && JSON.stringify(part.data) === JSON.stringify(finalValues[followed])) {
        followed += 1;
        if (followed === finalValues.length) return;
        ranFirst();
      }
    }
  })();
  try {
    const status = await Promise.race([opened, following.then(() => "closed")]);
    if (status !== 200) {
      const error = await following.then(
        () => null,
        (e) => e,
      );
      assert.fail(`GET /threads/{id}/stream of a thread without a run answered ${status}: ${error?.message}`);
    }
    await sleep(100);
    const body = { config: { configurable: { delay: 0.1 } }, streamMode: ["values", "updates"] };
    const first = await client.runs.create(threadId, "slow", { input: { steps: [] }, ...body });
    await Promise.race([firstSeen, following]);
    const second = await client.runs.create(threadId, "slow", { input: { steps: [] }, ...body });
    await following;

    // Each run starts with metadata {run_id, attempt}; a thread stream also marks its end ({status: "run_done"}).
    const runIds = received.filter((p) => p.event === "metadata" && p.data.attempt).map((p) => p.data.run_id);
    const done = received.filter((p) => p.event === "metadata" && p.data.status === "run_done");
    assert.deepEqual(
      done.map((p) => p.data.run_id),
      [first.run_id],
      "the first run's end is marked before the second run's events",
    );
    assert.deepEqual(runIds, [first.run_id, second.run_id], JSON.stringify(received.map((p) => p.event)));
    assert.ok(
      received.some((p) => p.event === "updates" && JSON.stringify(p.data) === '{"work":{"steps":["step 2"]}}'),
      JSON.stringify(received),
    );
  } finally {
    abort.abort();
    await following.catch(() => {});
  }
});
