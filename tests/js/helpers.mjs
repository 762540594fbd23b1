// Shared helpers of the JS SDK conformance tests: the server under test is LANGGRAPH_API_URL.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { Client } from "@langchain/langgraph-sdk";

export const API_URL = process.env.LANGGRAPH_API_URL;
if (!API_URL) {
  throw new Error("LANGGRAPH_API_URL must be set to the URL of the server under test");
}

// The LangGraph API's default assistant of graph "agent": uuid5(NAMESPACE_GRAPH, "agent").
export const AGENT_ASSISTANT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Every test gets this long; a stream that never ends fails the test instead of hanging the suite.
export const TEST_TIMEOUT_MS = 30_000;
export const STREAM_TIMEOUT_MS = 20_000;

export function makeClient(config = {}) {
  return new Client({ apiUrl: API_URL, ...config });
}

export function human(text) {
  return { messages: [{ role: "user", content: text }] };
}

export function contents(values) {
  return values.messages.map((message) => message.content);
}

export function lastContent(values) {
  return values.messages.at(-1).content;
}

export function tag() {
  return randomUUID().replaceAll("-", "");
}

/** A signal that aborts a stream left open too long, so a hanging server fails the test. */
export function streamDeadline(ms = STREAM_TIMEOUT_MS) {
  return AbortSignal.timeout(ms);
}

export async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

/** Asserts that `promise` rejects with the SDK's HTTPError of the given status. */
export async function rejectsWithStatus(promise, status) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.status, status, `expected HTTP ${status}, got ${error.status ?? "no status"}: ${error.message}`);
    return true;
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `runs.get` until the run has `status` (or the time is up). */
export async function waitForRunStatus(client, threadId, runId, statuses, ms = 5_000) {
  const wanted = [statuses].flat();
  const deadline = Date.now() + ms;
  let run = await client.runs.get(threadId, runId);
  while (!wanted.includes(run.status)) {
    assert.ok(Date.now() < deadline, `run ${runId} is ${run.status}, expected ${wanted.join(" or ")}`);
    await sleep(50);
    run = await client.runs.get(threadId, runId);
  }
  return run;
}
