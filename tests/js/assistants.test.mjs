// Assistants through the JS SDK: create, get, update, search, count, graph, schemas, versions, latest, delete.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { AGENT_ASSISTANT_ID, TEST_TIMEOUT_MS, UUID, makeClient, rejectsWithStatus, tag } from "./helpers.mjs";

const client = makeClient();
const options = { timeout: TEST_TIMEOUT_MS };

test("the default assistant of a graph is found by graph id and by its uuid", options, async () => {
  const byGraph = await client.assistants.get("agent");
  assert.equal(byGraph.assistant_id, AGENT_ASSISTANT_ID);
  assert.equal(byGraph.graph_id, "agent");
  assert.deepEqual(byGraph.metadata, { created_by: "system" });
  assert.deepEqual(await client.assistants.get(AGENT_ASSISTANT_ID), byGraph);
  await rejectsWithStatus(client.assistants.get(randomUUID()), 404);
});

test("create, get, update, versions, setLatest and delete an assistant", options, async () => {
  const marker = tag();
  const created = await client.assistants.create({
    graphId: "slow",
    config: { configurable: { delay: 0.1 } },
    metadata: { suite: marker, round: 1 },
    name: "v1",
    description: "created by the JS SDK",
  });
  assert.match(created.assistant_id, UUID);
  assert.equal(created.graph_id, "slow");
  assert.equal(created.version, 1);
  assert.equal(created.name, "v1");
  assert.equal(created.description, "created by the JS SDK");
  assert.deepEqual(created.config, { configurable: { delay: 0.1 } });
  assert.deepEqual(created.metadata, { suite: marker, round: 1 });
  const id = created.assistant_id;
  assert.deepEqual(await client.assistants.get(id), created);

  const v2 = await client.assistants.update(id, { name: "v2", config: { configurable: { delay: 0.2 } } });
  assert.equal(v2.version, 2);
  assert.equal(v2.name, "v2");
  assert.deepEqual(v2.config, { configurable: { delay: 0.2 } });
  assert.equal(v2.created_at, created.created_at);
  const v3 = await client.assistants.update(id, { name: "v3", metadata: { round: 3 } });
  assert.equal(v3.version, 3);
  assert.deepEqual(v3.metadata, { suite: marker, round: 3 }); // merged
  assert.deepEqual(v3.config, { configurable: { delay: 0.2 } });

  const versions = await client.assistants.getVersions(id);
  assert.deepEqual(
    versions.map((v) => [v.version, v.name]),
    [
      [3, "v3"],
      [2, "v2"],
      [1, "v1"],
    ],
  );
  assert.ok(versions.every((v) => v.assistant_id === id && v.graph_id === "slow"));
  const paged = await client.assistants.getVersions(id, { limit: 1, offset: 1 });
  assert.deepEqual(
    paged.map((v) => v.version),
    [2],
  );

  const latest = await client.assistants.setLatest(id, 1);
  assert.equal(latest.version, 1);
  assert.equal(latest.name, "v1");
  assert.deepEqual(latest.config, { configurable: { delay: 0.1 } });
  assert.deepEqual(latest.metadata, { suite: marker, round: 1 });
  assert.deepEqual(await client.assistants.get(id), latest);
  await rejectsWithStatus(client.assistants.setLatest(id, 99), 404);

  await client.assistants.delete(id);
  await rejectsWithStatus(client.assistants.get(id), 404);
  await rejectsWithStatus(client.assistants.delete(id), 404);
  assert.deepEqual(await client.assistants.search({ metadata: { suite: marker } }), []);
});

test("search and count by metadata, graph and name, with pagination", options, async () => {
  const marker = tag();
  const ids = [];
  for (const [i, graphId] of ["agent", "slow", "agent"].entries()) {
    const created = await client.assistants.create({
      graphId,
      name: `${marker}-${i}`,
      metadata: { suite: marker, i, even: i % 2 === 0 },
    });
    ids.push(created.assistant_id);
  }
  const suite = { suite: marker };
  const newestFirst = await client.assistants.search({ metadata: suite });
  assert.deepEqual(
    newestFirst.map((a) => a.assistant_id),
    [...ids].reverse(),
  );
  const agents = await client.assistants.search({ metadata: suite, graphId: "agent", sortBy: "name", sortOrder: "asc" });
  assert.deepEqual(
    agents.map((a) => a.name),
    [`${marker}-0`, `${marker}-2`],
  );
  const even = await client.assistants.search({ metadata: { ...suite, even: true }, sortOrder: "asc" });
  assert.deepEqual(
    even.map((a) => a.assistant_id),
    [ids[0], ids[2]],
  );
  const byName = await client.assistants.search({ name: `${marker}-1` });
  assert.deepEqual(
    byName.map((a) => a.assistant_id),
    [ids[1]],
  );

  const first = await client.assistants.search({
    metadata: suite,
    limit: 2,
    sortBy: "name",
    sortOrder: "asc",
    includePagination: true,
  });
  assert.deepEqual(
    first.assistants.map((a) => a.name),
    [`${marker}-0`, `${marker}-1`],
  );
  assert.equal(first.next, "2");
  const second = await client.assistants.search({
    metadata: suite,
    limit: 2,
    offset: 2,
    sortBy: "name",
    sortOrder: "asc",
    includePagination: true,
  });
  assert.deepEqual(
    second.assistants.map((a) => a.name),
    [`${marker}-2`],
  );
  assert.equal(second.next, null);

  const selected = await client.assistants.search({ metadata: suite, limit: 1, select: ["assistant_id", "name"] });
  assert.deepEqual(Object.keys(selected[0]).sort(), ["assistant_id", "name"]);

  assert.equal(await client.assistants.count({ metadata: suite }), 3);
  assert.equal(await client.assistants.count({ metadata: suite, graphId: "slow" }), 1);
  assert.equal(await client.assistants.count({ metadata: { ...suite, even: false } }), 1);
  assert.equal(await client.assistants.count({ metadata: { suite: tag() } }), 0);
});

test("getGraph and getSchemas describe the graph", options, async () => {
  const graph = await client.assistants.getGraph("agent");
  assert.deepEqual(new Set(graph.nodes.map((node) => node.id)), new Set(["__start__", "model", "tools", "__end__"]));
  assert.ok(
    graph.edges.some((edge) => edge.source === "__start__" && edge.target === "model"),
    JSON.stringify(graph.edges),
  );
  assert.deepEqual(await client.assistants.getGraph(AGENT_ASSISTANT_ID, { xray: true }), graph);
  const slow = await client.assistants.getGraph("slow");
  assert.deepEqual(new Set(slow.nodes.map((node) => node.id)), new Set(["__start__", "work", "__end__"]));

  const schemas = await client.assistants.getSchemas("agent");
  assert.equal(schemas.graph_id, "agent");
  assert.ok("messages" in schemas.input_schema.properties, JSON.stringify(schemas.input_schema));
  assert.ok("messages" in schemas.output_schema.properties, JSON.stringify(schemas.output_schema));
  assert.ok("messages" in schemas.state_schema.properties, JSON.stringify(schemas.state_schema));
  const slowSchemas = await client.assistants.getSchemas("slow");
  assert.equal(slowSchemas.state_schema.properties.steps.type, "array");
  await rejectsWithStatus(client.assistants.getSchemas(randomUUID()), 404);
});
