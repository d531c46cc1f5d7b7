/**
 * The processes of the gateway benchmark (bench/gateway.ts): the parent forks
 * each server as a TypeScript child under tsx and talks to it over IPC; a
 * child serves named commands and reports its main thread's event-loop
 * utilization and CPU over the measured window.
 */
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

/** A forked server process. */
export interface Child<I> {
  readonly pid: number;
  /** What the child reported when it was ready (its ports). */
  readonly info: I;
  request<T>(cmd: string, arg?: unknown): Promise<T>;
  /** Asks the child to shut down; kills it if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/** What a child measured over one window: its main thread's event-loop utilization and CPU. */
export interface ChildWindow {
  readonly eventLoopUtilization: number;
  readonly mainThreadCpuMs: number;
}

type Reply = { id: number; result?: unknown; error?: string };

/**
 * Forks `bench/gateway/<name>.ts` with `input` (JSON in BENCH_CHILD_INPUT) and
 * waits for its ready message. `execArgv` adds node flags (`--cpu-prof`…).
 */
export async function startChild<I>(name: string, input: unknown, execArgv: readonly string[] = []): Promise<Child<I>> {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const proc: ChildProcess = fork(file, [], {
    execArgv: ["--import", "tsx", ...execArgv],
    env: { ...process.env, BENCH_CHILD_INPUT: JSON.stringify(input) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const info = await new Promise<I>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${name} exited with ${code} before it was ready`));
    proc.once("exit", onExit);
    proc.on("message", (m: { ready?: I } & Partial<Reply>) => {
      if (m.ready !== undefined) {
        proc.off("exit", onExit);
        resolve(m.ready);
        return;
      }
      const p = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.error !== undefined) p?.reject(new Error(`${name}: ${m.error}`));
      else p?.resolve(m.result);
    });
  });
  proc.once("exit", () => {
    for (const p of pending.values()) p.reject(new Error(`${name} exited`));
    pending.clear();
  });
  const request = <T>(cmd: string, arg?: unknown) => new Promise<T>((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    proc.send({ id, cmd, arg });
  });
  return {
    pid: proc.pid!,
    info,
    request,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await request("stop").catch(() => undefined);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The input the parent gave this child. */
export function childInput<T>(): T {
  return JSON.parse(process.env.BENCH_CHILD_INPUT ?? "{}") as T;
}

/**
 * Child side: serves `handlers` plus `window-start` / `window-end`
 * (ChildWindow) and `stop` (runs `stop`, answers, exits so that a
 * `--cpu-prof` profile is written), then reports `ready`.
 */
export function serveChild(ready: unknown, handlers: Record<string, (arg: unknown) => unknown>, stop: () => Promise<void>): void {
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.threadCpuUsage();
  const all: Record<string, (arg: unknown) => unknown> = {
    ...handlers,
    "window-start": () => {
      elu0 = performance.eventLoopUtilization();
      cpu0 = process.threadCpuUsage();
    },
    "window-end": (): ChildWindow => {
      const cpu = process.threadCpuUsage(cpu0);
      return { eventLoopUtilization: performance.eventLoopUtilization(elu0).utilization, mainThreadCpuMs: (cpu.user + cpu.system) / 1000 };
    },
  };
  process.on("message", (m: { id: number; cmd: string; arg?: unknown }) => {
    if (m.cmd === "stop") {
      void stop().finally(() => process.send!({ id: m.id, result: null }, () => process.exit(0)));
      return;
    }
    Promise.resolve()
      .then(() => {
        const h = all[m.cmd];
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        return h(m.arg);
      })
      .then((result) => process.send!({ id: m.id, result: result ?? null }), (err: unknown) => process.send!({ id: m.id, error: String(err) }));
  });
  // The parent going away (Ctrl-C, a crash) ends the child too.
  process.on("disconnect", () => process.exit(0));
  process.send!({ ready });
}
