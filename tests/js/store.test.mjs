// The store through the JS SDK: putItem, getItem, searchItems, listNamespaces, deleteItem.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TEST_TIMEOUT_MS, makeClient, tag } from "./helpers.mjs";

const client = makeClient();
const options = { timeout: TEST_TIMEOUT_MS };

test("put, get, search, list namespaces and delete items", options, async () => {
  const root = `js-${tag()}`;
  const alice = [root, "users", "alice"];
  const bob = [root, "users", "bob"];
  assert.equal(await client.store.putItem(alice, "prefs", { theme: "dark", size: 3 }), undefined);
  await client.store.putItem(alice, "notes", { text: "héllo 🙂", tags: ["a", "b"], nested: { n: null } });
  await client.store.putItem(bob, "prefs", { theme: "light", size: 1 });

  const item = await client.store.getItem(alice, "prefs");
  assert.deepEqual(item.namespace, alice);
  assert.equal(item.key, "prefs");
  assert.deepEqual(item.value, { theme: "dark", size: 3 });
  assert.ok(!Number.isNaN(Date.parse(item.created_at)), item.created_at);
  assert.equal(item.createdAt, item.created_at);
  assert.equal(item.updatedAt, item.updated_at);
  const notes = await client.store.getItem(alice, "notes");
  assert.deepEqual(notes.value, { text: "héllo 🙂", tags: ["a", "b"], nested: { n: null } });

  await client.store.putItem(alice, "prefs", { theme: "solarized" });
  const overwritten = await client.store.getItem(alice, "prefs");
  assert.deepEqual(overwritten.value, { theme: "solarized" });
  assert.ok(Date.parse(overwritten.updated_at) >= Date.parse(item.updated_at));

  const everything = await client.store.searchItems([root], { limit: 100 });
  assert.deepEqual(everything.items.map((i) => `${i.namespace.join("/")}:${i.key}`).sort(), [
    `${root}/users/alice:notes`,
    `${root}/users/alice:prefs`,
    `${root}/users/bob:prefs`,
  ]);
  assert.ok(everything.items.every((i) => i.createdAt === i.created_at));
  const ofAlice = await client.store.searchItems(alice);
  assert.deepEqual(ofAlice.items.map((i) => i.key).sort(), ["notes", "prefs"]);
  const light = await client.store.searchItems([root], { filter: { theme: "light" } });
  assert.deepEqual(
    light.items.map((i) => [i.namespace, i.key, i.value]),
    [[bob, "prefs", { theme: "light", size: 1 }]],
  );
  const paged = await client.store.searchItems([root], { limit: 2, offset: 2 });
  assert.equal(paged.items.length, 1);

  const namespaces = await client.store.listNamespaces({ prefix: [root] });
  assert.deepEqual(namespaces.namespaces.sort(), [alice, bob]);
  const shallow = await client.store.listNamespaces({ prefix: [root], maxDepth: 2 });
  assert.deepEqual(shallow.namespaces, [[root, "users"]]);
  const bySuffix = await client.store.listNamespaces({ prefix: [root], suffix: ["bob"] });
  assert.deepEqual(bySuffix.namespaces, [bob]);

  assert.equal(await client.store.deleteItem(alice, "prefs"), undefined);
  const remaining = await client.store.searchItems([root], { limit: 100 });
  assert.deepEqual(remaining.items.map((i) => `${i.namespace.at(-1)}:${i.key}`).sort(), ["alice:notes", "bob:prefs"]);
  await client.store.deleteItem(alice, "prefs"); // deleting again is fine
});

test("getItem of a missing key resolves to null", options, async () => {
  const namespace = [`js-${tag()}`, "missing"];
  assert.equal(await client.store.getItem(namespace, "never-written"), null);
  await client.store.putItem(namespace, "short-lived", { v: 1 });
  await client.store.deleteItem(namespace, "short-lived");
  assert.equal(await client.store.getItem(namespace, "short-lived"), null);
});
