// The official TypeScript SDK's client against gpu-mcp --demo, over stdio, streamable HTTP and
// SSE: the client validates every structured result against the tool's output schema.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { BIN, TOKEN, serverEnv, startServer, text } from '../lib/gpu-mcp.mjs';

const TOOLS = ['list_providers', 'list_gpu_offers', 'list_images', 'list_instances', 'get_instance', 'launch_instance',
  'start_instance', 'stop_instance', 'restart_instance', 'save_image', 'renew_instance', 'destroy_instance', 'wait_instance', 'set_auto_stop',
  'gpu_status', 'run_command', 'copy_to_instance', 'copy_from_instance', 'start_job', 'job_status', 'job_logs', 'stop_job',
  'get_operation', 'cancel_operation'];

for (const transport of ['stdio', 'http', 'sse']) {
  describe(`TypeScript SDK client over ${transport}`, () => {
    let server;
    const clients = [];
    before(async () => {
      if (transport !== 'stdio') server = await startServer({ transport, env: { GPU_MCP_AUTH_TOKEN: TOKEN } });
    });
    after(async () => {
      for (const c of clients) await c.close().catch(() => {});
      if (server) assert.equal(await server.stop(), 0, `gpu-mcp did not stop cleanly:\n${server.stderr()}`);
    });

    function newTransport(token = TOKEN) {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      switch (transport) {
        case 'stdio':
          return new StdioClientTransport({ command: BIN, args: ['--demo'], env: serverEnv(), stderr: 'ignore' });
        case 'http':
          return new StreamableHTTPClientTransport(server.url, { requestInit: { headers } });
        case 'sse':
          return new SSEClientTransport(server.url, { requestInit: { headers } });
      }
    }

    // connect opens a session; with a human, the client declares elicitation and lets the
    // human answer the server's questions.
    async function connect(human) {
      const capabilities = human ? { elicitation: {} } : {};
      const client = new Client({ name: 'gpu-mcp-e2e', version: '1.0.0' }, { capabilities });
      if (human) client.setRequestHandler(ElicitRequestSchema, (req) => human(req.params));
      await client.connect(newTransport());
      clients.push(client);
      // Listing the tools first lets the SDK validate structured results against the schemas.
      await client.listTools();
      return client;
    }

    async function ok(client, name, args = {}) {
      const res = await client.callTool({ name, arguments: args });
      assert.ok(!res.isError, `${name} failed: ${text(res)}`);
      assert.ok(res.structuredContent, `${name} returned no structured content`);
      return res;
    }

    // offerAndImage picks the cheapest available offer and a public image for it.
    async function offerAndImage(client) {
      const offers = (await ok(client, 'list_gpu_offers', { available_only: true, provider: 'datenfab', limit: 5 })).structuredContent.offers;
      assert.ok(offers.length > 0, 'no available datenfab offer in the demo');
      const images = (await ok(client, 'list_images', { offer_id: offers[0].id, kind: 'public' })).structuredContent.images;
      assert.ok(images.length > 0, `no public image for ${offers[0].id}`);
      return { offer_id: offers[0].id, image_id: images[0].id };
    }

    async function instanceIDs(client) {
      const res = await ok(client, 'list_instances', { provider: 'datenfab' });
      return res.structuredContent.instances.map((i) => i.id);
    }

    test('tools/list: every tool with schemas and all four hints', async () => {
      const client = await connect();
      assert.equal(client.getServerVersion().name, 'gpu-mcp');
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOLS].sort());
      for (const t of tools) {
        assert.equal(t.inputSchema.type, 'object', t.name);
        assert.equal(t.outputSchema?.type, 'object', t.name);
        assert.ok(t.description, t.name);
        for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint']) {
          assert.equal(typeof t.annotations?.[hint], 'boolean', `${t.name}.${hint}`);
        }
      }
      const launch = tools.find((t) => t.name === 'launch_instance');
      assert.equal(launch.annotations.readOnlyHint, false);
      assert.ok(launch.inputSchema.properties.confirm_token, 'launch_instance takes confirm_token');
      assert.equal(launch.inputSchema.additionalProperties, false, 'unknown arguments are refused by the schema');
    });

    test('tools/call list_gpu_offers: demo offers of the three clouds, cheapest first', async () => {
      const client = await connect();
      const res = await ok(client, 'list_gpu_offers', { limit: 50 });
      const { offers } = res.structuredContent;
      assert.ok(offers.length > 0);
      assert.match(text(res), /demo/i);
      const providers = new Set(offers.map((o) => o.id.split(':')[0]));
      assert.deepEqual([...providers].sort(), ['chenyu', 'datenfab', 'huixingyun']);
      // Cheapest first by the price per GPU-hour, prepaid prices spread over their period;
      // unpriced offers last.
      const priced = offers.filter((o) => typeof o.hourly_equivalent === 'number').map((o) => o.hourly_equivalent);
      assert.ok(priced.length > 0, 'no offer has an hourly_equivalent');
      assert.deepEqual(priced, [...priced].sort((a, b) => a - b));
      assert.deepEqual(offers.slice(0, priced.length).map((o) => typeof o.hourly_equivalent), priced.map(() => 'number'));
      // The SDK validates an error's structuredContent against the output schema too.
      const bad = await client.callTool({ name: 'list_gpu_offers', arguments: { billing: 'yearly' } });
      assert.equal(bad.isError, true, 'a bad argument is a tool error');
      assert.deepEqual(
        { kind: bad.structuredContent.kind, field: bad.structuredContent.field, value: bad.structuredContent.value, retryable: bad.structuredContent.retryable },
        { kind: 'invalid', field: 'billing', value: 'yearly', retryable: false });
      assert.match(bad.structuredContent.accepted, /hourly, daily, weekly or monthly/);
      assert.equal(text(bad).split('\n').length, 2, 'what went wrong, then what to do');
      // An unknown tool is a protocol error, as the specification says, that lists the tools.
      await assert.rejects(client.callTool({ name: 'launch', arguments: {} }), /there is no tool "launch"; call one of list_providers, .*launch_instance/);
    });

    test('guarded call: launch_instance plans, then runs with the token, once', async () => {
      const client = await connect();
      const args = { ...(await offerAndImage(client)), name: `e2e-${transport}` };
      const before = await instanceIDs(client);

      const plan = (await ok(client, 'launch_instance', args)).structuredContent;
      assert.equal(plan.status, 'confirmation_required');
      assert.match(plan.confirm_token, /^gmc1\./);
      assert.equal(plan.plan.action, 'launch');
      assert.deepEqual(await instanceIDs(client), before, 'the plan alone launched something');

      const done = await ok(client, 'launch_instance', { ...args, confirm_token: plan.confirm_token });
      assert.equal(done.structuredContent.status, 'done', text(done));
      const id = done.structuredContent.instance_id;
      assert.match(id, /^datenfab:/);
      assert.ok((await instanceIDs(client)).includes(id), `${id} is not in list_instances`);

      const replay = await client.callTool({ name: 'launch_instance', arguments: { ...args, confirm_token: plan.confirm_token } });
      assert.equal(replay.isError, true);
      assert.match(text(replay), /already been used/);
    });

    if (transport === 'sse') {
      // mcp-go's SSE transport cannot send the server's questions, so a client that declares
      // elicitation gets the plan and a token, never a failure.
      test('elicitation over SSE: the guard falls back to plan and token', async () => {
        let asked = 0;
        const client = await connect(() => { asked++; return { action: 'accept', content: { approve: true } }; });
        const args = await offerAndImage(client);
        const res = (await ok(client, 'launch_instance', args)).structuredContent;
        assert.equal(res.status, 'confirmation_required');
        assert.equal(asked, 0);
      });
    } else {
      test('elicitation accept: the person approves the plan and it runs', async () => {
        const questions = [];
        const client = await connect((params) => {
          questions.push(params);
          return { action: 'accept', content: { approve: true } };
        });
        const args = await offerAndImage(client);
        const res = await ok(client, 'launch_instance', args);
        assert.equal(res.structuredContent.status, 'done', text(res));
        assert.equal(questions.length, 1);
        assert.match(questions[0].message, /approval \(launch_instance\)/);
        assert.equal(questions[0].requestedSchema.properties.approve.type, 'boolean');
        assert.ok((await instanceIDs(client)).includes(res.structuredContent.instance_id));
      });

      test('elicitation decline: nothing runs', async () => {
        const client = await connect(() => ({ action: 'decline' }));
        const args = await offerAndImage(client);
        const before = await instanceIDs(client);
        const res = await ok(client, 'launch_instance', args);
        assert.equal(res.structuredContent.status, 'declined');
        assert.deepEqual(await instanceIDs(client), before);
      });
    }

    if (transport !== 'stdio') {
      test('a client without the bearer token is refused', async () => {
        for (const token of [null, 'not-the-token-0123456789']) {
          const client = new Client({ name: 'intruder', version: '1.0.0' });
          clients.push(client);
          await assert.rejects(client.connect(newTransport(token)), /401|Unauthorized/i);
        }
        const health = await fetch(new URL('/healthz', server.base));
        assert.equal(health.status, 200);
        const body = await health.text();
        assert.deepEqual(JSON.parse(body), { status: 'ok' });
        assert.ok(!body.includes(TOKEN));
      });

      test('the token never reaches the logs', () => {
        assert.ok(server.stderr().includes('serving MCP'));
        assert.ok(!server.stderr().includes(TOKEN));
      });
    }
  });
}

// Under GPU_MCP_EXEC=confirm the machine tools that change the machine answer with a plan
// first; the SDK validates those plans against the output schemas too (a plan is the outcome
// alone: none of the result's own fields, whose zero values would not match them).
describe('TypeScript SDK client: the machine tools\' plans under GPU_MCP_EXEC=confirm', () => {
  let client;
  let workspace;
  before(async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    workspace = mkdtempSync(join(tmpdir(), 'gpu-mcp-e2e-ws-'));
    writeFileSync(join(workspace, 'train.sh'), 'echo step 1\n');
    client = new Client({ name: 'gpu-mcp-e2e', version: '1.0.0' }, { capabilities: {} });
    await client.connect(new StdioClientTransport({ command: BIN, args: ['--demo'], stderr: 'ignore',
      env: serverEnv({ GPU_MCP_EXEC: 'confirm', GPU_MCP_WORKSPACE: workspace }) }));
    await client.listTools();
  });
  after(async () => {
    await client?.close().catch(() => {});
    const { rmSync } = await import('node:fs');
    if (workspace) rmSync(workspace, { recursive: true, force: true });
  });

  test('start_job, copy_to_instance, run_command and stop_job plan, and nothing runs', async () => {
    const { instances } = (await client.callTool({ name: 'list_instances', arguments: {} })).structuredContent;
    const running = instances.find((i) => i.state === 'running');
    assert.ok(running, 'no running instance in the demo');
    const calls = [
      ['start_job', { instance_id: running.id, command: 'bash train.sh' }],
      ['copy_to_instance', { instance_id: running.id, local_path: 'train.sh', remote_path: 'train.sh' }],
      ['run_command', { instance_id: running.id, command: 'nvidia-smi' }],
      ['stop_job', { instance_id: running.id, job_id: 'job-none' }],
    ];
    for (const [name, args] of calls) {
      const res = await client.callTool({ name, arguments: args }); // rejects if the schema does not match
      assert.ok(!res.isError, `${name}: ${text(res)}`);
      assert.equal(res.structuredContent.status, 'confirmation_required', name);
      assert.ok(res.structuredContent.plan && res.structuredContent.confirm_token, name);
      for (const field of ['job_id', 'state', 'files', 'exit_code', 'stdout']) {
        assert.equal(res.structuredContent[field], undefined, `${name}'s plan carries ${field}`);
      }
    }
  });
});
