// The round trip `make clients` runs through the TypeScript client:
// openapi-fetch typed by the `paths` openapi-typescript generates from the
// server's /openapi.json.
//
// It proves the document is usable as people use it: tsc checks every call
// (paths, parameters, header names, bodies, response types) against the
// generated types, and the compiled script then runs it. Exits non-zero at
// the first mismatch, saying which. The list follows the `Link` header
// (the Python round trip follows `next-offset`), so both are exercised.
//
// Needs CLIENT_BASE_URL (tools/clients-run resolves it from the document's
// server entry); tools/clients-run generates `api-schema` (see tsconfig.json)
// and compiles this file.

import createClient from "openapi-fetch";
import type { components, paths } from "api-schema";

type ApiError = components["schemas"]["Error"];
type Value = components["schemas"]["Value"];

// The document's ETag pattern: a strong tag holding the record's version.
const ETAG = /^"(0|[1-9][0-9]*)"$/;
const PAGE_SIZE = 2;
// Bounds the paging loop, so a cursor that never ends fails instead of hanging.
const MAX_PAGES = 20;

class Mismatch extends Error {}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Mismatch(what);
}

/** What openapi-fetch answers: the parsed body as `data` (2xx) or `error`. */
type Answer = { data?: unknown; error?: unknown; response: Response };

function expectStatus(answer: Answer, status: number, step: string): void {
  const { response } = answer;
  const body = JSON.stringify(answer.error ?? answer.data ?? null);
  check(response.status === status, `${step}: status ${response.status}, expected ${status}; body ${body}`);
}

/** The documented error body, `{"error": "..."}`, as the client types it. */
function expectError(result: Answer, status: number, step: string): string {
  expectStatus(result, status, step);
  const error = result.error as ApiError | undefined;
  check(
    typeof error === "object" && error !== null && Object.keys(error).join() === "error",
    `${step}: error body ${JSON.stringify(result.error)}, expected {"error": "..."}`,
  );
  check(typeof error.error === "string" && error.error !== "", `${step}: error ${JSON.stringify(error.error)}`);
  return error.error;
}

function etagOf(response: Response, step: string): string {
  const tag = response.headers.get("ETag");
  check(tag !== null && ETAG.test(tag), `${step}: ETag header ${JSON.stringify(tag)}`);
  return tag;
}

function same(a: unknown, b: unknown): boolean {
  // Records come back with their attributes in any order.
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([x], [y]) => (x < y ? -1 : 1))
              .map(([k, w]) => [k, canonical(w)]),
          )
        : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** The query of `Link: <?...>; rel="next"`, resolved against the called URL. */
function nextLink(response: Response, step: string): URLSearchParams | null {
  const link = response.headers.get("Link");
  if (link === null) return null;
  const match = /^<([^>]*)>;\s*rel="next"$/.exec(link);
  check(match !== null, `${step}: Link header ${JSON.stringify(link)}`);
  return new URL(match[1], response.url).searchParams;
}

async function roundTrip(baseUrl: string, tag: string): Promise<void> {
  const client = createClient<paths>({ baseUrl });
  // An id a path must percent-encode (space, `+`, `%`, `#`, `?`, non-ASCII):
  // the generated client has to encode it, the server to decode it.
  const first = `${tag}-0 Ana María+100%#?`;
  let record: { id: string; [name: string]: Value } = {
    id: first,
    full_name: "Round Trip",
    gender: "F",
    roundtrip: tag,
    visits: 3,
    verified: true,
    nickname: null,
    languages: ["en", "fr"],
    address: { city: "Lyon", zip: "69001" },
  };

  let step = "create";
  const created = await client.POST("/users", { body: record });
  expectStatus(created, 201, step);
  check(same(created.data, record), `${step}: stored ${JSON.stringify(created.data)}`);
  const location = created.response.headers.get("Location");
  // A relative reference whose last segment is the id, percent-encoded.
  const expected = `users/${encodeURIComponent(first).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
  check(location === expected, `${step}: Location ${JSON.stringify(location)}, expected ${expected}`);
  let version = etagOf(created.response, step);

  step = "create the same id again";
  expectError(await client.POST("/users", { body: record }), 409, step);

  step = "read";
  const path = { path: { id: first } };
  const read = await client.GET("/users/{id}", { params: path });
  expectStatus(read, 200, step);
  check(same(read.data, record), `${step}: read ${JSON.stringify(read.data)}`);
  check(etagOf(read.response, step) === version, `${step}: ETag differs from the create's ${version}`);

  step = "read with If-None-Match: the current ETag";
  const unchanged = await client.GET("/users/{id}", {
    params: { ...path, header: { "If-None-Match": version } },
  });
  expectStatus(unchanged, 304, step);
  check(unchanged.data === undefined, `${step}: a body ${JSON.stringify(unchanged.data)}`);
  check(etagOf(unchanged.response, step) === version, `${step}: ETag differs from ${version}`);

  step = "update with If-Match: the current ETag";
  const changes = { full_name: "Round Trip Changed", nickname: "rt" };
  const updated = await client.PUT("/users/{id}", {
    params: { ...path, header: { "If-Match": version } },
    body: changes,
  });
  expectStatus(updated, 200, step);
  record = { ...record, ...changes };
  check(same(updated.data, record), `${step}: answered ${JSON.stringify(updated.data)}`);
  const stale = version;
  version = etagOf(updated.response, step);
  check(version !== stale, `${step}: the ETag stayed ${version}`);

  step = "update with If-Match: a stale ETag";
  const refused = await client.PUT("/users/{id}", {
    params: { ...path, header: { "If-Match": stale } },
    body: { gender: "M" },
  });
  console.log(`  412 as Error: ${expectError(refused, 412, step)}`);
  const after = await client.GET("/users/{id}", { params: path });
  check(same(after.data, record), `${step}: the record changed to ${JSON.stringify(after.data)}`);

  // More records of this run, so the list spans several pages.
  const ids = [first];
  for (let n = 1; n < 5; n++) {
    const id = `${tag}-${n} ürün`;
    const more = await client.POST("/users", { body: { id, full_name: `Round Trip ${n}`, roundtrip: tag } });
    expectStatus(more, 201, `create ${id}`);
    ids.push(id);
  }

  step = "list, following Link";
  const query = { limit: PAGE_SIZE, filters: `roundtrip:eq:"${tag}"`, fields: "id,full_name" };
  let offset: string | undefined;
  const listed: string[] = [];
  let pages = 0;
  for (;;) {
    pages += 1;
    check(pages <= MAX_PAGES, `${step}: still a Link after ${MAX_PAGES} pages`);
    const page = await client.GET("/users", { params: { query: { ...query, offset } } });
    expectStatus(page, 200, `${step}, page ${pages}`);
    check(Array.isArray(page.data), `${step}: body ${JSON.stringify(page.data)}`);
    check(page.data.length <= PAGE_SIZE, `${step}: ${page.data.length} records on a page of ${PAGE_SIZE}`);
    for (const item of page.data) {
      check(Object.keys(item).sort().join() === "full_name,id", `${step}: fields=id,full_name answered ${JSON.stringify(item)}`);
      listed.push(String(item.id));
    }
    const next = nextLink(page.response, step);
    const header = page.response.headers.get("next-offset");
    if (next === null) {
      check(header === null, `${step}: next-offset ${header} without a Link`);
      break;
    }
    // The link keeps the other parameters and carries the next-offset cursor.
    for (const [name, value] of Object.entries(query)) {
      check(next.get(name) === String(value), `${step}: Link's ${name} is ${next.get(name)}, sent ${value}`);
    }
    check(next.get("offset") === header, `${step}: Link's offset ${next.get("offset")}, next-offset ${header}`);
    offset = next.get("offset") ?? undefined;
  }
  check(same(listed.sort(), [...ids].sort()), `${step}: listed ${listed}, expected ${ids}`);
  console.log(`  listed ${listed.length} records in ${pages} pages of ${PAGE_SIZE}`);

  step = "list with a bad filter";
  const bad = await client.GET("/users", { params: { query: { filters: "roundtrip:no_such_operator:1" } } });
  console.log(`  400 as Error: ${expectError(bad, 400, step)}`);

  step = "delete with If-Match: a stale ETag";
  expectError(await client.DELETE("/users/{id}", { params: { ...path, header: { "If-Match": stale } } }), 412, step);

  step = "delete with If-Match: the current ETag";
  const deleted = await client.DELETE("/users/{id}", { params: { ...path, header: { "If-Match": version } } });
  expectStatus(deleted, 204, step);
  for (const id of ids.slice(1)) {
    expectStatus(await client.DELETE("/users/{id}", { params: { path: { id } } }), 204, `delete ${id}`);
  }

  step = "read after delete";
  console.log(`  404 as Error: ${expectError(await client.GET("/users/{id}", { params: path }), 404, step)}`);
}

const baseUrl = process.env.CLIENT_BASE_URL;
if (!baseUrl) {
  console.error("roundtrip.mts: CLIENT_BASE_URL is not set; run it through tools/clients-run");
  process.exit(1);
}
try {
  await roundTrip(baseUrl, `ts-${process.pid}`);
} catch (error) {
  if (!(error instanceof Mismatch)) throw error;
  console.error(`typescript client round trip FAILED: ${error.message}`);
  process.exit(1);
}
console.log("typescript client round trip: ok");
