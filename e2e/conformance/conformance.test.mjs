// The MCP conformance suite (@modelcontextprotocol/conformance, on Node 22) against
// `gpu-mcp --demo --transport http`: every server scenario not listed in not-applicable.txt
// must pass, and every listed one must still not apply.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { E2E_DIR, NODE22, startServer } from '../lib/gpu-mcp.mjs';

const CONFORMANCE = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
// Scenarios that must never be excluded: they are what every MCP server is judged by.
const CORE = ['server-initialize', 'ping', 'tools-list', 'logging-set-level', 'dns-rebinding-protection'];

function conformance(...args) {
  return new Promise((resolve) => {
    execFile(NODE22, [CONFORMANCE, ...args], { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

// notApplicable reads the exclusion list: name -> reason.
function notApplicable() {
  const excluded = new Map();
  for (const line of readFileSync(join(E2E_DIR, 'conformance', 'not-applicable.txt'), 'utf8').split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [name, ...reason] = t.split(/\s+/);
    assert.ok(reason.length > 0, `not-applicable.txt: ${name} has no reason`);
    assert.ok(!excluded.has(name), `not-applicable.txt: ${name} twice`);
    excluded.set(name, reason.join(' '));
  }
  return excluded;
}

// resultsOf reads the checks each scenario's run wrote under dir: scenario -> checks.
function resultsOf(dir) {
  const results = new Map();
  for (const entry of readdirSync(dir, { recursive: true })) {
    const m = /^server-(.+)-\d{4}-\d\d-\d\dT[^/]*\/checks\.json$/.exec(entry);
    if (m) results.set(m[1], JSON.parse(readFileSync(join(dir, entry), 'utf8')));
  }
  return results;
}

const listed = await conformance('list', '--server');
assert.equal(listed.code, 0, `conformance list failed:\n${listed.stdout}${listed.stderr}`);
const scenarios = [...listed.stdout.matchAll(/^\s*-\s+([a-z0-9-]+)/gm)].map((m) => m[1]);
const excluded = notApplicable();

test('the exclusion list names only existing scenarios, and none of the core ones', () => {
  assert.ok(scenarios.length > 0, `no scenario listed:\n${listed.stdout}`);
  for (const name of excluded.keys()) assert.ok(scenarios.includes(name), `not-applicable.txt names ${name}, which the suite no longer has`);
  for (const name of CORE) {
    assert.ok(scenarios.includes(name), `the suite has no ${name} scenario`);
    assert.ok(!excluded.has(name), `${name} applies to every server and cannot be excluded`);
  }
});

describe('MCP conformance: server scenarios against gpu-mcp --demo --transport http', () => {
  let server;
  let out;
  let results;
  let run;
  before(async () => {
    server = await startServer({ transport: 'http' });
    out = mkdtempSync(join(tmpdir(), 'gpu-mcp-conformance-'));
    // One run of every scenario; its exit status counts the inapplicable ones as failures, so
    // the checks are judged here, scenario by scenario.
    run = await conformance('server', '--url', server.url.href, '--suite', 'all', '-o', out);
    results = resultsOf(out);
  });
  after(async () => {
    rmSync(out, { recursive: true, force: true });
    assert.equal(await server.stop(), 0, server.stderr());
  });

  for (const name of scenarios.filter((s) => !excluded.has(s))) {
    test(name, () => {
      const checks = results.get(name);
      assert.ok(checks, `${name} did not run:\n${run.stdout}${run.stderr}`);
      const failed = checks.filter((c) => c.status === 'FAILURE');
      assert.deepEqual(failed.map((c) => `${c.id}: ${c.errorMessage}`), [], `${name} failed`);
      assert.ok(checks.some((c) => c.status === 'SUCCESS'), `${name} checked nothing: ${JSON.stringify(checks)}`);
    });
  }

  test('the scenarios listed as not applicable still do not apply', () => {
    const nowPassing = [...excluded.keys()].filter((name) => {
      const checks = results.get(name);
      assert.ok(checks, `${name} did not run:\n${run.stdout}${run.stderr}`);
      return checks.some((c) => c.status === 'SUCCESS');
    });
    assert.deepEqual(nowPassing, [], 'these scenarios pass now: remove them from not-applicable.txt');
  });
});
