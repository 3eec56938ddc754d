// Starts the real wsreactor binary on an ephemeral loopback port for the Node tests.
// The binary is $WSREACTOR_BIN, else target/release/wsreactor (scripts/clients.sh
// builds it and sets the variable). Every server started here is killed by stop(), and
// by an exit hook as a last resort, so a failing or crashing test leaves none behind.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const START_TIMEOUT_MS = 30_000;
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function binaryPath() {
  const bin =
    process.env.WSREACTOR_BIN ??
    fileURLToPath(new URL("../../target/release/wsreactor", import.meta.url));
  if (!existsSync(bin)) {
    throw new Error(`no wsreactor binary at ${bin}: run cargo build --release or set WSREACTOR_BIN`);
  }
  return bin;
}

/** Starts `wsreactor serve --listen 127.0.0.1:0` and resolves once it printed its address. */
export async function startServer(args = []) {
  const child = spawn(binaryPath(), ["serve", "--listen", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, RUST_LOG: "info" },
  });
  running.add(child);
  const lines = [];
  const server = {
    child,
    addr: null,
    log: () => lines.slice(-50).join("\n"),
    httpUrl: (path = "/") => `http://${server.addr}${path}`,
    wsUrl: (path = "/echo") => `ws://${server.addr}${path}`,
    /** Throws if the server has exited (a test's actions must not crash it). */
    assertRunning() {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wsreactor exited (${child.exitCode ?? child.signalCode}):\n${server.log()}`);
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      }
      running.delete(child);
    },
  };
  try {
    server.addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`wsreactor printed no "listening on" line:\n${server.log()}`)),
        START_TIMEOUT_MS,
      );
      let partial = "";
      // Keep reading stderr for the server's whole life, so it never blocks on a pipe.
      child.stderr.on("data", (chunk) => {
        partial += chunk.toString("utf8");
        const parts = partial.split("\n");
        partial = parts.pop();
        for (const line of parts) {
          lines.push(line);
          const m = line.match(/listening on (\S+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        }
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`wsreactor exited (${code ?? signal}) before listening:\n${server.log()}`));
      });
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  if (!/^127\.0\.0\.1:[1-9]\d*$/.test(server.addr)) {
    await server.stop();
    throw new Error(`unexpected listen address ${server.addr}`);
  }
  return server;
}

/** A promise that rejects after `ms` with `what` in the message, unless `promise` settles first. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
